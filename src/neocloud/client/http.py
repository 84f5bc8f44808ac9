"""A typed HTTP client of the REST API (used by the CLI and by tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiError(Exception):
    """A problem+json answer (or a transport failure, with status 0)."""

    def __init__(self, status: int, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail
        self.body = body or {}


class Client:
    def __init__(
        self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = 300.0
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
                detail = body.get("detail") or body.get("title") or response.text
            except ValueError:
                body, detail = {}, response.text
            raise ApiError(response.status_code, str(detail), body)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any) -> Any:
        return self.request("PATCH", path, json=json)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def pages(self, path: str, limit: int = 1000, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, following next_cursor."""
        cursor: str | None = None
        while True:
            page = self.get(path, limit=limit, cursor=cursor, **params)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def apply_fleet(self, text: str, dry_run: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST",
            "/v1/fleet/apply",
            params={"dry_run": str(dry_run).lower()},
            content=text.encode(),
            headers={"Content-Type": "application/yaml"},
        )
        return result

    def get_text(self, path: str, **params: Any) -> str:
        """A GET whose answer is text (CSV), returned verbatim; errors as in `request`."""
        try:
            response = self._http.get(
                path,
                params={k: v for k, v in params.items() if v is not None},
                headers={"Accept": "text/csv, application/problem+json"},
            )
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
                detail = body.get("detail") or body.get("title") or response.text
            except ValueError:
                body, detail = {}, response.text
            raise ApiError(response.status_code, str(detail), body)
        return response.text
