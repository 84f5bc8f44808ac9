"""`Idempotency-Key` on creating POSTs: a retried request gets the first answer again.

Stored in the database (so it holds across API processes), per token, for 24 hours. The key
is claimed before the request runs; a concurrent duplicate gets 409, a reuse of the key with
a different request gets 422. Only successful (2xx) answers are kept: a failed request may
be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neocloud.api.problems import PROBLEM_JSON
from neocloud.auth.models import IdempotencyRecord
from neocloud.auth.tokens import digest
from neocloud.core.timeutil import utcnow

TTL = timedelta(hours=24)
MAX_KEY = 255


def _problem(status: int, title: str, detail: str) -> tuple[int, bytes]:
    return status, json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, factory: sessionmaker[Session] | None = None) -> None:
        self.app = app
        self.factory = factory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        auth = headers.get("authorization", "")
        if not key or not auth.lower().startswith("bearer "):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        factory: sessionmaker[Session] = self.factory or scope["app"].state.sessionmaker
        token_hash = digest(auth[7:].strip())
        request_hash = hashlib.sha256(
            b"|".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        if len(key) > MAX_KEY:
            await _send(
                send,
                *_problem(
                    422, "Invalid input", f"Idempotency-Key is longer than {MAX_KEY} characters"
                ),
            )
            return
        claimed = _claim(factory, token_hash, key, scope["path"], request_hash)
        if claimed is not None:
            await _send(send, *claimed, replayed=claimed[0] < 300)
            return

        captured: dict[str, Any] = {"status": 500, "body": b"", "headers": []}

        async def replay_receive() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            _finish(factory, token_hash, key, captured["status"], captured["body"])


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Send, status: int, body: bytes, replayed: bool = False) -> None:
    content_type = b"application/json" if status < 400 else PROBLEM_JSON.encode()
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _claim(
    factory: sessionmaker[Session], token_hash: str, key: str, path: str, request_hash: str
) -> tuple[int, bytes] | None:
    """Claim the key; or return what to answer instead (a stored response or a problem)."""
    now = utcnow()
    with factory() as session:
        try:
            with session.begin():
                session.execute(
                    sa.delete(IdempotencyRecord).where(
                        IdempotencyRecord.token_hash == token_hash,
                        IdempotencyRecord.key == key,
                        IdempotencyRecord.created_at < now - TTL,
                    )
                )
                session.add(
                    IdempotencyRecord(
                        token_hash=token_hash,
                        key=key,
                        method="POST",
                        path=path,
                        request_hash=request_hash,
                        created_at=now,
                    )
                )
            return None
        except IntegrityError:
            pass
        with session.begin():
            record = session.get(IdempotencyRecord, (token_hash, key))
        if record is None:  # released between our insert and our read: let the client retry
            return _problem(
                409, "Conflict", "a request with this Idempotency-Key just finished; retry"
            )
        if record.request_hash != request_hash:
            return _problem(
                422, "Invalid input", "this Idempotency-Key was used for a different request"
            )
        if record.status_code is None:
            return _problem(
                409, "Conflict", "a request with this Idempotency-Key is still in progress"
            )
        return record.status_code, (record.response_body or "").encode()


def _finish(
    factory: sessionmaker[Session], token_hash: str, key: str, status: int, body: bytes
) -> None:
    with factory() as session, session.begin():
        if 200 <= status < 300:
            session.execute(
                sa.update(IdempotencyRecord)
                .where(IdempotencyRecord.token_hash == token_hash, IdempotencyRecord.key == key)
                .values(status_code=status, response_body=body.decode("utf-8", "replace"))
            )
        else:
            session.execute(
                sa.delete(IdempotencyRecord).where(
                    IdempotencyRecord.token_hash == token_hash, IdempotencyRecord.key == key
                )
            )
