"""Errors as problem+json, cursor pagination, and Idempotency-Key on creating POSTs."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

PROBLEM_JSON = "application/problem+json"


def problem(resp: Response, status: int) -> dict[str, Any]:
    """Assert an RFC 9457 problem answer with `status`, and return its body."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    assert resp.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = resp.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def make_token(c: TestClient, role: str, tenant: str | None = None) -> str:
    resp = c.post("/v1/tokens", json={"name": f"t-{role}", "role": role, "tenant": tenant})
    assert resp.status_code == 201, resp.text
    token: str = resp.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_tenant(c: TestClient, name: str, **extra: Any) -> dict[str, Any]:
    resp = c.post("/v1/tenants", json={"name": name, "display_name": name.title(), **extra})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


# --- problem+json -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}],
    ids=["no-header", "basic-scheme", "empty-bearer"],
)
def test_401_without_a_bearer_token(api: TestClient, headers: dict[str, str]) -> None:
    api.headers.pop("Authorization")
    body = problem(api.get("/v1/tenants", headers=headers), 401)
    assert "Bearer" in body["detail"]
    assert body["title"] == "Unauthorized"


def test_401_for_unknown_and_revoked_tokens(api: TestClient) -> None:
    problem(api.get("/v1/tenants", headers=bearer("nc_nobody")), 401)
    created = api.post("/v1/tokens", json={"name": "short-lived", "role": "finance"}).json()
    assert api.get("/v1/tenants", headers=bearer(created["token"])).status_code == 200
    assert api.delete(f"/v1/tokens/{created['id']}").status_code == 200
    resp = api.get("/v1/tenants", headers=bearer(created["token"]))
    body = problem(resp, 401)
    assert "revoked" in body["detail"]
    assert resp.headers["www-authenticate"] == "Bearer"


def test_403_names_the_role_and_the_action(api: TestClient) -> None:
    finance = make_token(api, "finance")
    body = problem(
        api.post("/v1/tenants", json={"name": "x", "display_name": "X"}, headers=bearer(finance)),
        403,
    )
    assert body["title"] == "Forbidden"
    assert "finance" in body["detail"]
    assert "tenants write" in body["detail"]


def test_404_names_the_missing_object(api: TestClient) -> None:
    body = problem(api.get("/v1/tenants/no-such-tenant"), 404)
    assert "no-such-tenant" in body["detail"]
    problem(api.get("/v1/sites/nowhere"), 404)
    problem(api.get("/v1/no-such-endpoint"), 404)


def test_405_is_a_problem_with_an_allow_header(api: TestClient) -> None:
    resp = api.put("/v1/audit-events")
    body = problem(resp, 405)
    assert body["title"] == "Method not allowed"
    assert "GET" in resp.headers["allow"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "Not A Slug!", "display_name": "X"}, "name"),
        ({"name": "okay"}, "display_name"),
        ({"name": "okay", "display_name": "X", "currency": "dollars"}, "currency"),
        ({"name": "okay", "display_name": "X", "colour": "blue"}, "colour"),
    ],
    ids=["bad-pattern", "missing", "bad-currency", "unknown-field"],
)
def test_422_detail_names_the_field(api: TestClient, payload: dict[str, Any], field: str) -> None:
    body = problem(api.post("/v1/tenants", json=payload), 422)
    assert field in body["detail"], body
    assert any(e["loc"][-1] == field for e in body["errors"]), body["errors"]
    assert api.get("/v1/tenants").json()["items"] == []


def test_422_for_a_bad_query_parameter(api: TestClient) -> None:
    body = problem(api.get("/v1/tenants", params={"limit": 0}), 422)
    assert "limit" in body["detail"]
    body = problem(api.get("/v1/nodes", params={"state": "melted"}), 422)
    assert "state" in body["detail"]


def test_422_from_a_domain_rule_points_at_the_field(api: TestClient) -> None:
    body = problem(api.post("/v1/tokens", json={"name": "t", "role": "tenant-viewer"}), 422)
    assert "tenant" in body["detail"]
    assert body["errors"] == [{"loc": ["tenant"], "msg": "required for tenant roles"}]


def test_422_for_an_unparseable_json_body(api: TestClient) -> None:
    resp = api.post(
        "/v1/tenants", content=b"{not json", headers={"content-type": "application/json"}
    )
    problem(resp, 422)


@pytest.mark.parametrize("token_id", [0, 2**31, 2**63, 10**30])
def test_out_of_range_token_id_is_a_client_error(client: TestClient, token_id: int) -> None:
    # Regression: ids past the 32-bit column used to reach the database and answer 500.
    for method in ("GET", "DELETE"):
        resp = client.request(method, f"/v1/tokens/{token_id}")
        assert resp.status_code in (404, 422), f"{method}: {resp.status_code} {resp.text}"
        problem(resp, resp.status_code)


# --- cursor pagination --------------------------------------------------------------------


def walk(c: TestClient, path: str, limit: int) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    for _ in range(100):
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        resp = c.get(path, params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("the cursor walk did not end")


def test_cursor_walk_over_tenants(client: TestClient) -> None:
    names = [f"t{i:02d}" for i in range(7)]
    for name in names:
        new_tenant(client, name)
    pages = walk(client, "/v1/tenants", limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    seen = [t["name"] for page in pages for t in page]
    assert seen == names  # each once, in creation order
    ids = [t["id"] for page in pages for t in page]
    assert ids == sorted(ids)


def test_a_full_last_page_has_no_cursor(client: TestClient) -> None:
    for i in range(4):
        new_tenant(client, f"even{i}")
    assert [len(p) for p in walk(client, "/v1/tenants", limit=2)] == [2, 2]
    one = client.get("/v1/tenants", params={"limit": 1000}).json()
    assert len(one["items"]) == 4
    assert one["next_cursor"] is None


def test_cursor_walk_over_tokens(api: TestClient) -> None:
    for role in ("ops", "sales", "finance", "ops", "sales"):
        make_token(api, role)
    pages = walk(api, "/v1/tokens", limit=2)
    ids = [t["id"] for page in pages for t in page]
    assert len(ids) == 6  # the bootstrap admin and five more
    assert ids == sorted(set(ids))
    assert all(len(p) <= 2 for p in pages)


def test_rows_added_during_a_walk_are_not_skipped_or_repeated(api: TestClient) -> None:
    for i in range(4):
        new_tenant(api, f"early{i}")
    first = api.get("/v1/tenants", params={"limit": 2}).json()
    new_tenant(api, "late")
    second = api.get("/v1/tenants", params={"limit": 10, "cursor": first["next_cursor"]}).json()
    names = [t["name"] for t in first["items"] + second["items"]]
    assert names == ["early0", "early1", "early2", "early3", "late"]


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "bm9wZQ",
        base64.urlsafe_b64encode(b"row:3").decode(),
        base64.urlsafe_b64encode(b"id:x").decode(),
    ],
    ids=["not-base64", "no-prefix", "wrong-kind", "not-a-number"],
)
def test_a_bad_cursor_is_422(api: TestClient, cursor: str) -> None:
    body = problem(api.get("/v1/tenants", params={"cursor": cursor}), 422)
    assert "cursor" in body["detail"]
    assert body["errors"][0]["loc"] == ["query", "cursor"]


def test_limit_above_the_maximum_is_422(api: TestClient) -> None:
    body = problem(api.get("/v1/tokens", params={"limit": 1001}), 422)
    assert "limit" in body["detail"]


# --- Idempotency-Key ----------------------------------------------------------------------


def tenant_names(c: TestClient) -> list[str]:
    return [t["name"] for t in c.get("/v1/tenants", params={"limit": 1000}).json()["items"]]


def test_a_retried_post_creates_once_and_replays_the_answer(client: TestClient) -> None:
    body = {"name": "retry-co", "display_name": "Retry Co"}
    key = {"Idempotency-Key": "create-retry-co"}
    first = client.post("/v1/tenants", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = client.post("/v1/tenants", json=body, headers=key)
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"].startswith("application/json")
    assert second.json() == first.json()
    assert tenant_names(client) == ["retry-co"]
    creates = client.get("/v1/audit-events", params={"action": "tenant.create"}).json()["items"]
    assert len(creates) == 1


def test_without_a_key_a_second_post_is_a_conflict(client: TestClient) -> None:
    body = {"name": "twice-co", "display_name": "Twice Co"}
    assert client.post("/v1/tenants", json=body).status_code == 201
    problem(client.post("/v1/tenants", json=body), 409)


def test_the_same_key_with_another_body_is_422(client: TestClient) -> None:
    key = {"Idempotency-Key": "k-1"}
    assert (
        client.post(
            "/v1/tenants", json={"name": "first-co", "display_name": "First"}, headers=key
        ).status_code
        == 201
    )
    resp = client.post(
        "/v1/tenants", json={"name": "second-co", "display_name": "Second"}, headers=key
    )
    body = problem(resp, 422)
    assert "Idempotency-Key" in body["detail"]
    assert "idempotent-replayed" not in resp.headers
    assert tenant_names(client) == ["first-co"]


def test_a_failed_request_does_not_burn_the_key(client: TestClient) -> None:
    key = {"Idempotency-Key": "k-fix"}
    bad = client.post("/v1/tenants", json={"name": "Bad Name", "display_name": "Bad"}, headers=key)
    problem(bad, 422)
    good = client.post(
        "/v1/tenants", json={"name": "good-name", "display_name": "Good"}, headers=key
    )
    assert good.status_code == 201, good.text
    assert "idempotent-replayed" not in good.headers
    assert tenant_names(client) == ["good-name"]


def test_a_conflict_is_not_replayed(client: TestClient) -> None:
    new_tenant(client, "taken")
    key = {"Idempotency-Key": "k-conflict"}
    body = {"name": "taken", "display_name": "Taken"}
    problem(client.post("/v1/tenants", json=body, headers=key), 409)
    again = client.post("/v1/tenants", json=body, headers=key)
    problem(again, 409)
    assert "idempotent-replayed" not in again.headers


def test_keys_belong_to_one_token(client: TestClient) -> None:
    sales = make_token(client, "sales")
    key = {"Idempotency-Key": "shared-key"}
    body = {"name": "shared-co", "display_name": "Shared"}
    assert client.post("/v1/tenants", json=body, headers=key).status_code == 201
    # Another caller with the same key is not served the first caller's answer.
    other = client.post("/v1/tenants", json=body, headers={**key, **bearer(sales)})
    problem(other, 409)
    assert "idempotent-replayed" not in other.headers


def test_an_overlong_key_is_422(client: TestClient) -> None:
    resp = client.post(
        "/v1/tenants",
        json={"name": "long-key", "display_name": "L"},
        headers={"Idempotency-Key": "k" * 256},
    )
    body = problem(resp, 422)
    assert "Idempotency-Key" in body["detail"]
    assert tenant_names(client) == []
