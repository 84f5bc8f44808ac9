"""Downloading a file answer of the API (a usage export) in chunks, without holding it.

`Client.request` reads whole JSON answers; an export can be gigabytes, so it is streamed to
wherever the caller writes it. Errors come as `ApiError`, as from `Client`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from neocloud.client.http import ApiError

FILENAME = re.compile(r'filename="?([^";]+)"?')


@dataclass(frozen=True)
class Download:
    filename: str | None
    """The server's name for the file (Content-Disposition), if it gave one."""
    chunks: Iterator[bytes]


@contextmanager
def download(
    url: str, token: str | None, path: str, params: dict[str, Any], timeout: float = 300.0
) -> Iterator[Download]:
    """GET `path` and yield its body as chunks; a problem answer raises `ApiError`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    query = {k: v for k, v in params.items() if v is not None}
    try:
        with (
            httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout) as http,
            http.stream("GET", path, params=query) as response,
        ):
            if response.status_code >= 400:
                response.read()
                raise _problem(response)
            found = FILENAME.search(response.headers.get("content-disposition", ""))
            yield Download(found[1] if found else None, response.iter_bytes())
    except httpx.HTTPError as exc:
        raise ApiError(0, f"cannot reach {url}: {exc}") from exc


def _problem(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        detail = body.get("detail") or body.get("title") or response.text
    except ValueError:
        body, detail = {}, response.text
    return ApiError(response.status_code, str(detail), body)
