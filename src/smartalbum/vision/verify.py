"""Visual verification: does a photo show a condition ("戴帽子", "wearing a hat", "两只猫")? P(yes) per photo.

The vision model is asked one bilingual yes/no question per photo and the answer's probability is read from
the model's own token scores, never sampled:

- `Verifier` (protocol): `version: str` (model id + prompt version; the cache key of the answers) and
  `probabilities(images: list[PIL.Image.Image], condition: str) -> list[float]`, one P(yes) in [0, 1] per
  image, in order, the images checked as one batch. A photo the model could not check gets NaN (never
  cached); `last_errors: dict[int, str]` then says why, by index into the last call's images.
- `QwenVLVerifier`: the local Qwen3-VL through transformers, on the weights of `qwen_vl.shared_analyser`
  (the same loaded copy the process uses elsewhere; never a second one). One forward pass per batch, left
  padded, no generation: P(yes) = softmax over the next-token logits of the "yes" and the "no" answer tokens,
  each side summing its variants (yes / Yes / YES / " yes" ... / 是 and no / No / ... / 否, the ids the
  tokenizer really has; see `answer_token_ids`). Use an Instruct model: a thinking model's first token is
  not the answer.
- `OpenAIVerifier`: any OpenAI-compatible server (vLLM, ...): one chat completion per photo with
  max_tokens=1, temperature=0, logprobs=true, top_logprobs=20; P(yes) = the yes variants' probability mass
  among the first token's top logprobs, renormalised against the no variants'. A server that gives no
  logprobs (or rejects the request for asking) is read from the answer text instead: yes -> 1.0, no -> 0.0;
  the verifier then says so: `uses_logprobs` is False and `version` ends in "|text".
- `verifier(settings, *, analyser=None) -> tuple[Verifier | None, str | None]`: the verifier for the
  configured backend, loaded and ready (transformers: the model is loaded now; openai: the server is asked
  for /models), cached per process; `(None, reason)` when no vision model can be used (the reason is the
  ModelError's text, with its hint), `(verifier, None)` otherwise. Pass the transformers `analyser` to share
  one that is already loaded.

The catalog cache (catalog/verifications.py) and the capped, timed run over candidate photos
(search/verify.py `verify_candidates`) build on this.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from smartalbum.config import Settings
from smartalbum.errors import ModelError

if TYPE_CHECKING:
    from smartalbum.vision.openai_compat import OpenAICompatAnalyser
    from smartalbum.vision.qwen_vl import QwenVLAnalyser

log = logging.getLogger(__name__)

VERIFY_PROMPT_VERSION = "verify-v1"
TOP_LOGPROBS = 20  # the most OpenAI and vLLM (default --max-logprobs) allow

SYSTEM_PROMPT = (
    "You check photos against a description for a private photo library. Look only at what is visible. "
    "Reply with exactly one English word: yes or no."
)

YES_WORDS = ("yes", "Yes", "YES", "是")
NO_WORDS = ("no", "No", "NO", "否")
_YES = {"yes", "是"}
_NO = {"no", "否"}


def question(condition: str) -> str:
    """The user prompt for one condition, in English and Chinese (the condition may be in either)."""
    return (
        f"Does this photo show: {condition}? Answer yes or no.\n"
        f"这张照片里是否有：{condition}？只回答 yes 或 no。"
    )


def verify_messages(image_placeholder: Any, condition: str) -> list[dict[str, Any]]:
    """Chat messages (Hugging Face multimodal style) asking whether the image shows `condition`."""
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {
            "role": "user",
            "content": [
                {"type": "image", "image": image_placeholder},
                {"type": "text", "text": question(condition)},
            ],
        },
    ]


class Verifier(Protocol):
    """Checks a visual condition on photos; see the module docstring."""

    @property
    def version(self) -> str:
        """Model id + verification prompt version (an attribute will do); answers are cached by it."""
        ...

    def probabilities(self, images: list[Image.Image], condition: str) -> list[float]: ...


# ------------------------------------------------------------------------------------------ transformers


def answer_token_ids(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The token ids that start a "yes" and a "no" answer: (yes ids, no ids), disjoint and never empty.

    Every variant (yes, Yes, YES, 是; with and without a leading space) that the tokenizer encodes as one
    token counts. A side without any single-token variant (tiny test vocabularies) takes its variants' first
    tokens instead, minus any token that also starts a variant of the other side (such as a bare space).
    """
    spaced = [(" " + w) for w in (*YES_WORDS, *NO_WORDS) if w.isascii()]

    def encodings(words: tuple[str, ...]) -> list[list[int]]:
        variants = [*words, *(s for s in spaced if s.strip() in words)]
        return [list(tokenizer.encode(w, add_special_tokens=False)) for w in variants]

    yes_enc, no_enc = encodings(YES_WORDS), encodings(NO_WORDS)

    def ids(own: list[list[int]], other: list[list[int]]) -> list[int]:
        single = {e[0] for e in own if len(e) == 1}
        other_starts = {e[0] for e in other if e}
        chosen = single - other_starts
        if not chosen:
            chosen = {e[0] for e in own if e} - other_starts
        return sorted(chosen)

    yes_ids, no_ids = ids(yes_enc, no_enc), ids(no_enc, yes_enc)
    if not yes_ids or not no_ids:
        raise ModelError(
            "the model's tokenizer has no distinct tokens for the answers yes and no",
            "use a Qwen3-VL Instruct model, or the openai backend",
        )
    return yes_ids, no_ids


class QwenVLVerifier:
    """P(yes) from a local Qwen3-VL's next-token scores (see the module docstring)."""

    def __init__(self, analyser: QwenVLAnalyser) -> None:
        from smartalbum.vision.qwen_vl import model_display_name

        self.analyser = analyser
        self.version = f"{model_display_name(analyser.model_id)}|{VERIFY_PROMPT_VERSION}"
        self.last_errors: dict[int, str] = {}
        self._ids: tuple[list[int], list[int]] | None = None
        self._lock = threading.Lock()  # one forward pass at a time on the shared weights

    def load(self) -> None:
        """Load the shared model now (ModelError when it cannot be) and look up the answer tokens."""
        with self._lock:
            processor, _ = self.analyser.loaded_model()
            if self._ids is None:
                self._ids = answer_token_ids(processor.tokenizer)

    def probabilities(self, images: list[Image.Image], condition: str) -> list[float]:
        """One P(yes) per image from one left-padded forward pass; raises when the batch cannot run."""
        import torch

        from smartalbum.vision.qwen_vl import fit_pixels

        self.last_errors = {}
        if not images:
            return []
        self.load()
        assert self._ids is not None
        yes_ids, no_ids = self._ids
        fitted = [fit_pixels(img, self.analyser.max_pixels) for img in images]
        with self._lock:
            _, model = self.analyser.loaded_model()
            inputs = self.analyser.model_inputs([verify_messages(img, condition) for img in fitted], fitted)
            with torch.inference_mode():
                # Left padding puts every row's next-token position last; only that position's logits.
                out = model(**inputs, logits_to_keep=1)
            logits = out.logits[:, -1, :].float()
        log_probs = torch.log_softmax(logits, dim=-1)
        yes = torch.logsumexp(log_probs[:, yes_ids], dim=-1)
        no = torch.logsumexp(log_probs[:, no_ids], dim=-1)
        return [float(p) for p in torch.sigmoid(yes - no).tolist()]


# ------------------------------------------------------------------------------------------ OpenAI-compatible


def _answer_word(token: str) -> str | None:
    """'yes' / 'no' for a token or answer text that is one of the variants, else None."""
    word = token.replace("Ġ", " ").replace("▁", " ").strip().strip(".,!?:;\"'。，！？：；").casefold()
    if word in _YES or word.startswith("是"):
        return "yes"
    if word in _NO or word.startswith("否"):
        return "no"
    return None


def _first_token_logprobs(choice: dict[str, Any]) -> tuple[list[tuple[str, float]], tuple[str, float] | None]:
    """(top logprobs of the first answer token, the chosen token and its logprob) from a choice.

    Reads the chat format (logprobs.content[0].top_logprobs) and the legacy completions format
    (logprobs.top_logprobs[0] as {token: logprob}). Empty lists and None when the server sent none.
    """
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        return [], None
    top: list[tuple[str, float]] = []
    chosen: tuple[str, float] | None = None
    content = lp.get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        if isinstance(first.get("token"), str) and isinstance(first.get("logprob"), int | float):
            chosen = (first["token"], float(first["logprob"]))
        for entry in first.get("top_logprobs") or []:
            if isinstance(entry, dict) and isinstance(entry.get("token"), str):
                value = entry.get("logprob")
                if isinstance(value, int | float):
                    top.append((entry["token"], float(value)))
        return top, chosen
    legacy = lp.get("top_logprobs")
    if isinstance(legacy, list) and legacy and isinstance(legacy[0], dict):
        top = [(str(t), float(v)) for t, v in legacy[0].items() if isinstance(v, int | float)]
    return top, chosen


def probability_from_logprobs(
    top: list[tuple[str, float]], chosen: tuple[str, float] | None = None
) -> float | None:
    """P(yes) from the first token's top logprobs: yes variants' mass / (yes + no variants' mass).

    With no top list, the chosen token alone: exp(logprob) for yes, 1 - exp(logprob) for no. None when
    neither answer is among them.
    """
    mass = {"yes": 0.0, "no": 0.0}
    for token, logprob in top:
        word = _answer_word(token)
        if word and math.isfinite(logprob):
            mass[word] += math.exp(logprob)
    total = mass["yes"] + mass["no"]
    if total > 0:
        return mass["yes"] / total
    if not top and chosen is not None:
        word = _answer_word(chosen[0])
        p = math.exp(chosen[1]) if math.isfinite(chosen[1]) else 0.0
        if word == "yes":
            return min(1.0, p)
        if word == "no":
            return max(0.0, 1.0 - p)
    return None


class OpenAIVerifier:
    """P(yes) from an OpenAI-compatible server's logprobs (see the module docstring)."""

    def __init__(self, client: OpenAICompatAnalyser) -> None:
        self.client = client  # requests, retries and endpoint rotation of the analysis backend
        self._base_version = f"{client.model}|{VERIFY_PROMPT_VERSION}"
        # None until the first answer says whether the server gives logprobs; False: read from the text
        self.uses_logprobs: bool | None = None
        self.last_errors: dict[int, str] = {}

    @property
    def version(self) -> str:
        return self._base_version + ("|text" if self.uses_logprobs is False else "")

    def close(self) -> None:
        self.client.close()

    def probabilities(self, images: list[Image.Image], condition: str) -> list[float]:
        """One P(yes) per image; the requests run concurrently up to openai_concurrency."""
        errors: dict[int, str] = {}
        if not images:
            self.last_errors = errors
            return []

        def one(index: int) -> float:
            try:
                return self._one(images[index], condition)
            except Exception as exc:
                errors[index] = str(exc) or type(exc).__name__
                return math.nan

        workers = min(self.client.concurrency, len(images))
        if workers == 1:
            out = [one(i) for i in range(len(images))]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-verify") as pool:
                out = list(pool.map(one, range(len(images))))
        self.last_errors = errors
        return out

    def _one(self, image: Image.Image, condition: str) -> float:
        from smartalbum.vision.openai_compat import (
            _answer_text,
            _PhotoFailed,
            as_openai_messages,
            encode_image,
        )

        data_url, _ = encode_image(image, self.client.max_pixels)
        body: dict[str, Any] = {
            "model": self.client.model,
            "messages": as_openai_messages(verify_messages(data_url, condition)),
            "temperature": 0,
            "max_tokens": 1,
        }
        ask_logprobs = self.uses_logprobs is not False
        if ask_logprobs:
            body |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        try:
            payload = self.client._request_json(body)
        except _PhotoFailed as exc:
            if not (ask_logprobs and exc.status in (400, 422)):
                raise
            # a server that refuses logprobs: ask again for the answer alone, and remember
            body = {k: v for k, v in body.items() if k not in ("logprobs", "top_logprobs")}
            payload = self.client._request_json(body)
            log.warning("%s refused logprobs (%s); verifying from answer texts", self.client.model, exc)
            self.uses_logprobs = False
            ask_logprobs = False
        text, _ = _answer_text(payload)
        if ask_logprobs:
            choice = payload["choices"][0]  # _answer_text checked the shape
            top, chosen = _first_token_logprobs(choice)
            if top or chosen:
                self.uses_logprobs = True
                p = probability_from_logprobs(top, chosen)
                if p is not None:
                    return p
            else:
                log.warning("%s sent no logprobs; verifying from answer texts", self.client.model)
                self.uses_logprobs = False
        word = _answer_word(text)
        if word is None:
            raise ValueError(f"the answer is neither yes nor no: {text[:80]!r}")
        return 1.0 if word == "yes" else 0.0


# ------------------------------------------------------------------------------------------ choice


_CACHE: dict[tuple[Any, ...], Verifier] = {}
_CACHE_LOCK = threading.Lock()


def _cache_key(settings: Settings) -> tuple[Any, ...]:
    if settings.vlm_backend == "openai":
        return (
            "openai",
            tuple(settings.openai_base_urls),
            settings.vlm_model,
            settings.openai_api_key_env,
            settings.vlm_max_pixels,
            settings.openai_concurrency,
            settings.openai_timeout_s,
            settings.openai_max_retries,
        )
    return (
        settings.vlm_backend,
        settings.vlm_model,
        settings.vlm_device,
        settings.vlm_dtype,
        settings.vlm_load_in_4bit,
        settings.vlm_max_pixels,
    )


def verifier(
    settings: Settings, *, analyser: QwenVLAnalyser | None = None
) -> tuple[Verifier | None, str | None]:
    """The ready verifier for the configured vision backend, or (None, why) when none can be used.

    transformers: the model is loaded now (on `analyser` when given, else on the process's shared analyser);
    openai: the server must list the model at /models. A verifier that worked is kept for the process and
    returned again for the same settings; a failure is not kept (the next call tries again).
    """
    key = _cache_key(settings)
    if analyser is None:
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is not None:
            return cached, None
    try:
        made = _make(settings, analyser)
    except ModelError as exc:
        log.info("no verification: %s", exc)
        return None, str(exc)
    if analyser is None:
        with _CACHE_LOCK:
            made = _CACHE.setdefault(key, made)
    return made, None


def forget_verifiers() -> None:
    """Drop the process's cached verifiers (their shared model stays loaded until unloaded)."""
    with _CACHE_LOCK:
        dropped = list(_CACHE.values())
        _CACHE.clear()
    for v in dropped:
        close = getattr(v, "close", None)
        if callable(close):
            close()


def _make(settings: Settings, analyser: QwenVLAnalyser | None) -> Verifier:
    from smartalbum.vision.backends import VLM_BACKENDS, resolve_vlm_backend

    backend = resolve_vlm_backend(settings)  # "auto" names the engine this machine uses
    if backend == "transformers":
        from smartalbum.vision.qwen_vl import shared_analyser

        made = QwenVLVerifier(analyser or shared_analyser(settings))
        started = time.monotonic()
        made.load()
        log.debug("verifier ready in %.1f s", time.monotonic() - started)
        return made
    if backend == "openai":
        from smartalbum.vision.openai_compat import OpenAICompatAnalyser

        client = OpenAICompatAnalyser(settings)
        try:
            client.check()
        except ModelError:
            client.close()
            raise
        return OpenAIVerifier(client)
    if backend == "openvino":
        raise ModelError(
            "visual checks of search results are not available with the openvino engine yet",
            'set vlm_backend to "transformers" or "openai" to check results with the vision model',
        )
    raise ModelError(
        f"unknown vlm_backend {settings.vlm_backend!r}", f"choose one of: {', '.join(VLM_BACKENDS)}"
    )
