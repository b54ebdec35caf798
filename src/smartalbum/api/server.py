"""`smartalbum serve`: check where the server may listen, then run the app with uvicorn."""

from __future__ import annotations

import logging
import re
import socket
import threading

from smartalbum.api.security import is_loopback
from smartalbum.config import Settings
from smartalbum.errors import ConfigError
from smartalbum.library import Library

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16
_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&\s\"]*")
_NEW_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(24))'"


class _RedactToken(logging.Filter):
    """Keep `/?token=...` out of the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_URL.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token, or with a token that is easy to guess."""
    if not host.strip():
        raise ConfigError("no address to listen on", "use --host 127.0.0.1 (this machine only)")
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"the token is too short ({len(token)} characters, at least {MIN_TOKEN_CHARS})",
            f"make one with: {_NEW_TOKEN}",
        )
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to listen on {host} without a token: anyone on the network could see your photos",
            f"set SMARTALBUM_TOKEN or pass --token (make one with: {_NEW_TOKEN}), "
            "or listen on 127.0.0.1 only",
        )


def server_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    return f"http://{shown}:{port}/"


def _warm_up(library: Library) -> None:
    """Load the search models and indexes in the background, so the first search does not wait for them."""
    try:
        library.prepare_search()
    except Exception as exc:  # a search reports its own errors; this is only a head start
        log.warning("search could not be prepared yet: %s", exc)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, opened here so that a taken port is one clear error, not a log line and exit."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}: {exc}", "use --host 127.0.0.1 or this machine's address"
        ) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "choose another --port, or stop what uses it",
        ) from exc
    return sock


def serve(
    settings: Settings, *, host: str | None = None, port: int | None = None, token: str | None = None
) -> None:
    """Run the web app for the library in `settings` until interrupted (Ctrl-C)."""
    import uvicorn

    from smartalbum.api.app import create_app

    host = host or settings.host
    port = port or settings.port
    token = token or settings.token or None
    check_bind(host, token)
    library = Library(settings)
    library.stats()  # open the catalog now: a broken library fails before the server listens
    app = create_app(library, token=token)
    sock = bind(host, port)
    threading.Thread(target=_warm_up, args=(library,), name="search-warm-up", daemon=True).start()
    url = server_url(host, sock.getsockname()[1])
    print(f"smartalbum: serving {settings.library_dir} at {url}", flush=True)
    if token:
        print(
            f"first visit from a browser: {url}?token=<your token> (the browser then remembers it)",
            flush=True,
        )
    print("press Ctrl-C to stop", flush=True)
    logging.getLogger("uvicorn.access").addFilter(_RedactToken())
    config = uvicorn.Config(app, log_level="info", server_header=False, timeout_keep_alive=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        library.close()
