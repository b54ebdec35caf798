"""The server's guards as small ASGI middlewares: token, host names, body size, headers, errors."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

COOKIE_NAME = "smartalbum_session"
COOKIE_MAX_AGE = 30 * 24 * 3600
MAX_BODY_BYTES = 64 * 1024  # the largest JSON body the API takes is a 4 KB path

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": (
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(self), geolocation=()",  # the page records voice questions
}


def error_response(status: int, message: str, hint: str | None = None, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message, "hint": hint}, status_code=status, headers=headers or None)


def is_loopback(host: str) -> bool:
    name = host.strip().lower().strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """'127.0.0.1:8765' -> '127.0.0.1', '[::1]:8765' -> '::1'."""
    host = host_header.strip()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class TokenAuth:
    """Checks a bearer token or the session cookie that `/?token=...` sets, in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        # The cookie holds a value derived from the token, so a leaked cookie jar does not reveal the token.
        self.cookie_value = hmac.new(self._token, b"smartalbum web session v1", hashlib.sha256).hexdigest()

    def check_token(self, value: str) -> bool:
        return hmac.compare_digest(value.encode(), self._token)

    def allows(self, headers: Headers) -> bool:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.check_token(credentials.strip()):
            return True
        cookie = _cookie(headers.get("cookie", ""), COOKIE_NAME)
        return cookie is not None and hmac.compare_digest(cookie.encode(), self.cookie_value.encode())


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class RequireToken:
    """Every request needs the token, except the paths of the page's shell (which holds no photo data)."""

    def __init__(self, app: ASGIApp, auth: TokenAuth | None, public_paths: Collection[str]) -> None:
        self.app, self.auth, self.public_paths = app, auth, frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.auth is None
            or scope["path"] in self.public_paths
            or self.auth.allows(Headers(scope=scope))
        ):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "this library needs a token",
            "send 'Authorization: Bearer <token>', or open /?token=<token> once in the browser",
            **{"www-authenticate": 'Bearer realm="smartalbum"'},
        )
        await response(scope, receive, send)


class LoopbackHostsOnly:
    """Without a token, answer only requests addressed to a loopback name: a web page cannot then reach the
    library through DNS rebinding (a hostile domain re-pointed at 127.0.0.1)."""

    def __init__(self, app: ASGIApp, enabled: bool) -> None:
        self.app, self.enabled = app, enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.enabled:
            host = Headers(scope=scope).get("host", "")
            if not is_loopback(host_name(host)):
                response = error_response(
                    400,
                    f"host name {host[:100]!r} is not allowed",
                    "open the library at http://127.0.0.1:<port>/, or start the server with a token "
                    "to reach it under other names",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SameOriginWrites:
    """Refuse writes sent by pages of other sites (browsers name the sending site in Origin): no page on the
    web can add a folder or start a job through the visitor's browser."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            # a reverse proxy may rewrite Host; a cross-site page cannot set X-Forwarded-Host (CORS preflight)
            hosts = {headers.get("host", ""), headers.get("x-forwarded-host", "")} - {""}
            if origin is not None and urlsplit(origin).netloc not in hosts:
                response = error_response(
                    403, "a write from another site was refused", "use the library's own page"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _size_text(n: int) -> str:
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n // 1024} KB"


class LimitBody:
    """Refuse request bodies over a size: by Content-Length up front, and by counting while reading.

    `path_limits` gives single paths another cap (a recorded voice question is larger than any JSON body)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app, self.max_bytes, self.path_limits = app, max_bytes, dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        too_large = f"the request body is over {_size_text(limit)}"
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > limit):
            await error_response(413, too_large, "send less")(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes through FastAPI's body parsing to the JSON error handler.
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, counting_receive, send)


class SecurityHeaders:
    """Adds the security headers to every response, errors included; turns any escaped exception into a
    generic 500 (logged) so no stack trace ever reaches a client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                raw: list[Any] = list(message.get("headers", []))
                present = {k.lower() for k, _ in raw}
                raw += [
                    (k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present
                ]
                message = {**message, "headers": raw}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, "internal error", "see the server's log")
            await response(scope, receive, send_with_headers)
