"""The FastAPI app: the JSON API under /api, the web page and its assets, an offline /docs page.

Every error leaves as `{"error": message, "hint": hint}` with a 4xx status (5xx only when something is
broken, logged, and never with a stack trace).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from smartalbum import __version__
from smartalbum.api.docs import render_docs
from smartalbum.api.events import build_events_router
from smartalbum.api.files import ASSET_TYPES, asset_response, load_assets
from smartalbum.api.people import build_people_router
from smartalbum.api.routes import ConflictError, build_router
from smartalbum.api.security import (
    COOKIE_MAX_AGE,
    COOKIE_NAME,
    LimitBody,
    LoopbackHostsOnly,
    RequireToken,
    SameOriginWrites,
    SecurityHeaders,
    TokenAuth,
    error_response,
)
from smartalbum.api.similar import build_similar_router
from smartalbum.api.speech import TRANSCRIBE_PATH, build_speech_router
from smartalbum.errors import (
    ConfigError,
    InputError,
    LibraryError,
    ModelError,
    NoSpeechError,
    NotFoundError,
    SmartAlbumError,
    TooLargeError,
    UnsupportedMediaError,
)
from smartalbum.library import Library

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[SmartAlbumError], int]] = [
    (NotFoundError, 404),
    (TooLargeError, 413),
    (UnsupportedMediaError, 415),
    (NoSpeechError, 422),
    (InputError, 400),
    (ConfigError, 400),
    (ConflictError, 409),
    (ModelError, 503),
    (LibraryError, 503),
]
_HTTP_HINTS = {
    404: "see /docs for the API",
    405: "see /docs for the methods each path takes",
    413: "send less",
}
_WAIT_FOR_JOB_S = 10.0


def status_for(exc: SmartAlbumError) -> int:
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)


def _validation_message(errors: list[Any]) -> tuple[int, str]:
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "the request body is not valid JSON"
    parts = []
    for e in errors[:3]:
        where = ".".join(str(p) for p in e.get("loc", ())[1:]) or str(e.get("loc", ("body",))[0])
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return 422, "; ".join(parts) + more


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SmartAlbumError)
    async def smartalbum_error(request: Request, exc: SmartAlbumError) -> Response:
        return error_response(status_for(exc), exc.message, exc.hint)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        status, message = _validation_message(list(exc.errors()))
        return error_response(status, message, "see /docs for what each parameter takes")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if message == HTTPStatus(exc.status_code).phrase:  # Starlette's "Not Found" -> "not found"
            message = message.lower()
        hint = _HTTP_HINTS.get(exc.status_code)
        return error_response(exc.status_code, message, hint, **(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error", "see the server's log")


def create_app(library: Library, *, token: str | None) -> FastAPI:
    """The whole web app for one library. With a token, every request but the page's shell must carry it."""
    auth = TokenAuth(token) if token else None
    assets = load_assets()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # stop a running index job cleanly: what it read is saved, and the next job resumes
        job = library.jobs.current()
        if job is not None:
            library.jobs.cancel(job.id)
            library.jobs.wait(_WAIT_FOR_JOB_S)

    app = FastAPI(
        title="smartalbum",
        version=__version__,
        description="A private photo library that understands its photos: search in Chinese or English.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.library = library
    app.include_router(build_router(library))
    app.include_router(build_people_router(library))
    app.include_router(build_events_router(library))
    app.include_router(build_similar_router(library))
    app.include_router(build_speech_router(library))
    _install_error_handlers(app)

    @app.get("/", include_in_schema=False)
    def index(
        request: Request,
        token: Annotated[str | None, Query(max_length=1000)] = None,
        if_none_match: Annotated[str | None, Header(max_length=2000)] = None,
    ) -> Response:
        if auth is not None and token is not None:
            if not auth.check_token(token):
                return asset_response(assets["index.html"], None, status_code=401)
            # the cookie carries the session; the redirect takes the token out of the address bar and history
            response = RedirectResponse("/", status_code=303, headers={"cache-control": "no-store"})
            response.set_cookie(
                COOKIE_NAME,
                auth.cookie_value,
                max_age=COOKIE_MAX_AGE,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",  # behind an HTTPS proxy, never sent in the clear
            )
            return response
        return asset_response(assets["index.html"], if_none_match)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str, if_none_match: Annotated[str | None, Header(max_length=2000)] = None) -> Response:
        asset = assets.get(name) if name in ASSET_TYPES else None
        if asset is None:
            return error_response(404, "not found")
        return asset_response(asset, if_none_match)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(render_docs(app.openapi()), headers={"cache-control": "no-cache"})

    schema = app.openapi()  # built once and cached; add how to authenticate
    if auth is not None:
        schema.setdefault("components", {})["securitySchemes"] = {
            "token": {"type": "http", "scheme": "bearer"}
        }
        schema["security"] = [{"token": []}]

    public = {"/", "/favicon.ico", *(f"/static/{name}" for name in ASSET_TYPES)}
    # added innermost first: each add_middleware wraps what is there
    app.add_middleware(RequireToken, auth=auth, public_paths=public)
    app.add_middleware(LimitBody, path_limits={TRANSCRIBE_PATH: library.settings.voice_max_bytes})
    app.add_middleware(SameOriginWrites)
    app.add_middleware(LoopbackHostsOnly, enabled=auth is None)
    app.add_middleware(SecurityHeaders)
    return app
