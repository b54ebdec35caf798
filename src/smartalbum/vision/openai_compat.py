"""Analyser for any OpenAI-compatible chat-completions server (vLLM, SGLang, LMDeploy, Ollama, DashScope).

Images are downscaled to the pixel budget and sent as JPEG data URLs. Requests run with bounded concurrency,
round-robin over several base URLs; 429/5xx/connection errors/timeouts are retried with backoff, other 4xx
are not. One photo's failure becomes an 'error' result for that photo, never an exception for the batch.
"""

from __future__ import annotations

import base64
import email.utils
import io
import logging
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

from smartalbum.config import Settings
from smartalbum.errors import ModelError
from smartalbum.vision.base import AnalysisInput, AnalysisResult
from smartalbum.vision.parse import result_from_raw
from smartalbum.vision.prompt import PROMPT_VERSION, build_messages

log = logging.getLogger(__name__)

JPEG_QUALITY = 90
MAX_ERROR_BODY_CHARS = 300
_SERVER_HINT = (
    "start an OpenAI-compatible server (e.g. `vllm serve Qwen/Qwen3-VL-2B-Instruct --port 8000`) "
    "or set openai_base_urls (SMARTALBUM_OPENAI_BASE_URLS) to where one runs"
)


def encode_image(image: Image.Image, max_pixels: int) -> tuple[str, tuple[int, int]]:
    """A JPEG data URL of the image scaled down to at most max_pixels (never up), and its size."""
    img = image
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.new("RGB", rgba.size, (255, 255, 255))
        img.paste(rgba, mask=rgba.getchannel("A"))  # transparent areas become white, not black
    elif img.mode != "RGB":
        img = img.convert("RGB")
    w, h = img.size
    # also cap the long side, so an extreme panorama cannot become thousands of pixels wide
    long_cap = 4 * math.isqrt(max_pixels)
    scale = min(1.0, math.sqrt(max_pixels / max(1, w * h)), long_cap / max(w, h))
    if scale < 1.0:
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        img = img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), img.size


def openai_messages(data_url: str) -> list[dict[str, Any]]:
    """The shared prompt with the image part as an OpenAI `image_url`; a text-only system prompt as a string
    because some servers (older Ollama, LMDeploy) accept only strings there."""
    return as_openai_messages(build_messages(data_url))


def as_openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hugging Face style chat messages whose image parts hold data URLs, in OpenAI's shape (see above)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        parts = message["content"]
        if all(p.get("type") == "text" for p in parts):
            out.append({"role": message["role"], "content": "\n".join(p["text"] for p in parts)})
            continue
        converted = [
            {"type": "image_url", "image_url": {"url": p["image"]}} if p.get("type") == "image" else p
            for p in parts
        ]
        out.append({"role": message["role"], "content": converted})
    return out


class _PhotoFailed(Exception):
    """This photo gets an 'error' result with this message; `status`: the HTTP status that refused it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Endpoint:
    url: str
    down_until: float = 0.0  # monotonic time before which the endpoint is skipped


class _Endpoints:
    """Round-robin over base URLs, skipping ones that failed recently."""

    def __init__(self, urls: list[str]) -> None:
        self._items = [_Endpoint(u.rstrip("/")) for u in urls]
        self._next = 0
        self._lock = threading.Lock()

    @property
    def items(self) -> list[_Endpoint]:
        return list(self._items)

    def pick(self) -> _Endpoint:
        with self._lock:
            now = time.monotonic()
            n = len(self._items)
            for k in range(n):
                endpoint = self._items[(self._next + k) % n]
                if endpoint.down_until <= now:
                    self._next = (self._next + k + 1) % n
                    return endpoint
            # all are resting: the one that comes back first
            return min(self._items, key=lambda e: e.down_until)

    def keep(self, urls: list[str]) -> None:
        """Use only these endpoints from now on."""
        with self._lock:
            self._items = [e for e in self._items if e.url in urls]
            self._next = 0

    def rest(self, endpoint: _Endpoint, seconds: float) -> None:
        with self._lock:
            endpoint.down_until = max(endpoint.down_until, time.monotonic() + seconds)

    def ok(self, endpoint: _Endpoint) -> None:
        with self._lock:
            endpoint.down_until = 0.0

    def any_up(self) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(e.down_until <= now for e in self._items)


def _is_retryable(status: int) -> bool:
    """Overload, rate limit, timeouts and server errors may pass; other answers will not change on retry."""
    return status in (408, 429) or (status >= 500 and status not in (501, 505))


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _server_message(response: httpx.Response) -> str:
    """The error text a server put in its body ({"error": {"message"}}, {"detail"}, {"message"} or text)."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text[:MAX_ERROR_BODY_CHARS].split())
    message: Any = body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error
        else:
            message = error or body.get("detail") or body.get("message") or body
    return " ".join(str(message)[:MAX_ERROR_BODY_CHARS].split())


def _answer_text(body: Any) -> tuple[str, str | None]:
    """(message content, finish_reason) from a chat-completions body; _PhotoFailed when it has none."""
    if not isinstance(body, dict):
        raise _PhotoFailed(f"the server answered with JSON that is not an object ({type(body).__name__})")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        detail = body.get("error") or body.get("detail")
        extra = f": {str(detail)[:MAX_ERROR_BODY_CHARS]}" if detail else ""
        raise _PhotoFailed(f"the server's answer has no choices{extra}")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # some servers return content parts even for text
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    if content is not None and not isinstance(content, str):
        raise _PhotoFailed(f"the server's answer content is {type(content).__name__}, not text")
    finish = choices[0].get("finish_reason")
    return content or "", finish if isinstance(finish, str) else None


class OpenAICompatAnalyser:
    """Analyses photos through an OpenAI-compatible chat-completions API."""

    name = "openai"

    def __init__(
        self,
        settings: Settings,
        *,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 20.0,
        retry_after_max_s: float = 60.0,
        endpoint_rest_s: float = 30.0,
    ) -> None:
        if not settings.openai_base_urls:
            raise ModelError("no OpenAI-compatible server configured", _SERVER_HINT)
        self.settings = settings
        self.model = settings.vlm_model
        self.version = f"{self.model}|{PROMPT_VERSION}"
        self.max_pixels = settings.vlm_max_pixels
        self.max_new_tokens = settings.vlm_max_new_tokens
        self.concurrency = settings.openai_concurrency
        self.max_retries = settings.openai_max_retries
        self.timeout_s = settings.openai_timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self.endpoint_rest_s = endpoint_rest_s
        self._key_env = settings.openai_api_key_env
        # the variable's name lives in settings; the secret itself only in the environment
        api_key = os.environ.get(self._key_env, "").strip() if self._key_env else ""
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._endpoints = _Endpoints(settings.openai_base_urls)
        self._slots = threading.BoundedSemaphore(self.concurrency)  # shared by every analyse() call
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            headers=self._headers,
        )

    # ------------------------------------------------------------------------------------------ public

    def analyse(self, batch: list[AnalysisInput]) -> list[AnalysisResult]:
        """One result per input, in order; requests run concurrently up to openai_concurrency."""
        if not batch:
            return []
        workers = min(self.concurrency, len(batch))
        if workers == 1:
            return [self._analyse_one(item) for item in batch]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-vlm") as pool:
            return list(pool.map(self._analyse_one, batch))

    def check(self) -> list[str]:
        """Ask every base URL for /models; returns those serving the model, raises ModelError when none does.

        An endpoint that fails among healthy ones is logged and dropped from the rotation, not fatal.
        """
        failures: list[str] = []
        hint = _SERVER_HINT
        healthy: list[str] = []
        for endpoint in self._endpoints.items:
            url = endpoint.url + "/models"
            try:
                response = self._client.get(url, timeout=min(10.0, self.timeout_s))
            except httpx.HTTPError as exc:
                failures.append(f"cannot reach {endpoint.url} ({type(exc).__name__}: {exc})")
                continue
            if response.status_code in (401, 403):
                failures.append(f"{endpoint.url} refused the API key (HTTP {response.status_code})")
                hint = self._key_hint()
                continue
            if response.status_code != 200:
                failures.append(
                    f"{url} answered HTTP {response.status_code}: {_server_message(response)}"
                    " (does the base URL end in /v1?)"
                )
                continue
            try:
                body = response.json()
                served = [str(m.get("id")) for m in body.get("data", []) if isinstance(m, dict)]
            except (ValueError, AttributeError, TypeError):
                failures.append(f"{url} did not answer with a model list (is it an OpenAI-compatible API?)")
                continue
            if self.model not in served:
                shown = ", ".join(served[:10]) or "none"
                failures.append(f"{endpoint.url} does not serve model {self.model!r} (it serves: {shown})")
                hint = (
                    "set vlm_model to one of the served ids, or serve the model under that name "
                    "(vLLM: --served-model-name)"
                )
                continue
            healthy.append(endpoint.url)
        if not healthy:
            raise ModelError("; ".join(failures), hint)
        for failure in failures:
            log.warning("OpenAI-compatible endpoint dropped: %s", failure)
        self._endpoints.keep(healthy)
        return healthy

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAICompatAnalyser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ internals

    def _analyse_one(self, item: AnalysisInput) -> AnalysisResult:
        try:
            data_url, _ = encode_image(item.image, self.max_pixels)
        except (OSError, ValueError) as exc:
            return AnalysisResult(item.hash, "error", error=f"cannot encode the image: {exc}")
        body = {
            "model": self.model,
            "messages": openai_messages(data_url),
            "temperature": 0,
            "max_tokens": self.max_new_tokens,
        }
        try:
            text, finish = self._complete(body)
        except _PhotoFailed as exc:
            return AnalysisResult(item.hash, "error", error=str(exc))
        except Exception as exc:  # a bug or an odd server must not fail the batch
            log.exception("unexpected failure for photo %s", item.hash)
            return AnalysisResult(item.hash, "error", error=f"unexpected error: {type(exc).__name__}: {exc}")
        result = result_from_raw(item.hash, text)
        if finish == "length" and result.status == "unparsed" and result.error:
            result.error += f" (the answer hit max_tokens={self.max_new_tokens}; raise vlm_max_new_tokens)"
        return result

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so retrying clients do not stampede together."""
        return min(self.backoff_max_s, self.backoff_base_s * 2**attempt) * random.uniform(0.5, 1.0)

    def _key_hint(self) -> str:
        if self._headers:
            return f"the key in ${self._key_env} was rejected: check it"
        return f"set the environment variable {self._key_env} to the server's API key"

    def _complete(self, body: dict[str, Any]) -> tuple[str, str | None]:
        """POST /chat/completions with retries: (answer text, finish_reason), or _PhotoFailed."""
        return _answer_text(self._request_json(body))

    def _request_json(self, body: dict[str, Any]) -> Any:
        """POST /chat/completions with retries: the decoded JSON answer, or _PhotoFailed."""
        attempts = self.max_retries + 1
        last = "no attempt made"
        for attempt in range(attempts):
            endpoint = self._endpoints.pick()
            url = endpoint.url + "/chat/completions"
            retry_after: float | None = None
            dead = False
            try:
                with self._slots:
                    response = self._client.post(url, json=body)
            except httpx.TimeoutException:
                last = f"{url} did not answer within {self.timeout_s:g} s"
            except httpx.TransportError as exc:
                last = f"cannot reach {endpoint.url}: {type(exc).__name__}: {exc}"
                dead = True
            else:
                if response.status_code == 200:
                    answer = self._read_answer(url, response)
                    self._endpoints.ok(endpoint)
                    return answer
                last = self._refusal(url, response)  # raises unless the status is worth a retry
                retry_after = _retry_after_seconds(response.headers.get("retry-after"))
            if attempt == attempts - 1:
                break
            if retry_after is not None:
                delay = min(retry_after, self.retry_after_max_s)
            else:
                delay = self._backoff(attempt)
            self._endpoints.rest(endpoint, max(delay, self.endpoint_rest_s if dead else 0.0))
            log.debug("retrying in %.2f s after: %s", delay, last)
            if not self._endpoints.any_up():  # otherwise another endpoint takes the retry at once
                time.sleep(delay)
        raise _PhotoFailed(f"{last} (gave up after {attempts} attempts)")

    def _read_answer(self, url: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            snippet = " ".join(response.text[:120].split())
            raise _PhotoFailed(f"{url} answered with a body that is not JSON: {snippet!r}") from None

    def _refusal(self, url: str, response: httpx.Response) -> str:
        """The message for a non-200 answer; raises _PhotoFailed when retrying cannot help."""
        status = response.status_code
        message = _server_message(response)
        if status in (401, 403):
            raise _PhotoFailed(f"{url} refused the request (HTTP {status}): {self._key_hint()}", status)
        if status == 404:
            raise _PhotoFailed(
                f"{url} answered HTTP 404 ({message}): the base URL should end in /v1 and the server "
                f"must serve model {self.model!r}",
                status,
            )
        if not _is_retryable(status):
            raise _PhotoFailed(f"{url} rejected the request (HTTP {status}): {message}", status)
        return f"{url} answered HTTP {status}: {message}"
