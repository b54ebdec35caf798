"""Fail fast when a model can be neither found locally nor fetched: without this, a machine with no route to
the model hub spends a minute in the hub client's retries before saying so."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from smartalbum.errors import ModelError

DEFAULT_ENDPOINT = "https://huggingface.co"


def _cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an odd id or cache layout: let the loader decide
        return False


def hub_reachable(timeout_s: float = 3.0) -> bool:
    url = urlparse(os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def check_fetchable(model: str, hint: str) -> None:
    """Raise ModelError at once if `model` is a hub id that is not cached and the hub cannot be reached."""
    if Path(model).expanduser().exists() or os.environ.get("HF_HUB_OFFLINE") == "1" or _cached(model):
        return  # a local folder, or the loader's own offline/cache logic gives the precise error
    if not hub_reachable():
        endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
        raise ModelError(f"cannot download {model}: {endpoint} is not reachable from this machine", hint)
