"""``--api-key``: a Bearer token on every route but ``/health``, checked in constant time.

Each key is compared as its SHA-256 digest with :func:`hmac.compare_digest`, against every key
(no early exit), so neither the keys' contents nor their lengths nor which one matched shows in the
time of a refusal. Keys are never logged: neither the middleware nor the server's access log
(off) print headers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable

from .protocol import ApiError

OPEN_PATHS = ("/health",)  # load balancers' probes carry no credentials


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class BearerAuth:
    """Pure ASGI middleware: 401 in OpenAI's error shape unless ``Authorization: Bearer KEY`` holds a key."""

    def __init__(self, app: Callable, keys: Iterable[str]) -> None:
        self.app = app
        self.digests = [_digest(key.encode("utf-8")) for key in keys]

    def allowed(self, header: bytes | None) -> bool:
        scheme, _, token = (header or b"").partition(b" ")
        offered = _digest(token.strip())
        match = False
        for digest in self.digests:  # every key, always: the time does not depend on which one matched
            match |= hmac.compare_digest(offered, digest)
        return match and scheme.lower() == b"bearer"

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if self.allowed(header):
            await self.app(scope, receive, send)
            return
        reason = "no API key given" if header is None else "the API key is not valid"
        error = ApiError(
            401,
            f"{reason}: send the header 'Authorization: Bearer KEY' with a key the server was started with "
            "(--api-key or $SSE_NP_API_KEY)",
            None,
            "invalid_api_key",
        )
        response = error.openai()
        response.headers["www-authenticate"] = "Bearer"
        await response(scope, receive, send)
