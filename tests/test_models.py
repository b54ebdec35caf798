"""Models from the hub, a mirror or ModelScope (models.py), against a local HTTP server that answers in the
hub's and ModelScope's URL shapes: listings, redirects to a CDN, Range requests. The client code is the real
one; only the far end is ours."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from smartalbum.config import Settings
from smartalbum.errors import ModelError
from smartalbum.models import (
    MANIFEST,
    configured_models,
    local_copy,
    pull,
    pull_models,
    source_for,
)

REPO = "smartalbum-tests/tiny-model"
CLI = [sys.executable, "-c", "from smartalbum.cli import run; run()"]


def _files() -> dict[str, bytes]:
    weights = hashlib.sha256(b"seed").digest() * 12_000  # 384 KB, not a multiple of the 1 MB chunk
    return {
        "config.json": b'{"model_type": "tiny"}\n',
        "model.safetensors": weights,
        "sub/tokenizer.json": json.dumps({"vocab": list(range(500))}).encode(),
        ".gitattributes": b"*.safetensors filter=lfs\n",  # never fetched: a dot file
        "onnx/model.onnx": b"onnx export" * 100,  # never fetched: another runtime's weights
    }


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeHub:
    """The far end: a hub (listing, resolve, LFS redirects to a CDN) and ModelScope (listing, FilePath)."""

    url: str = ""
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (path, query, headers)
    corrupt: dict[str, int] = field(default_factory=dict)  # file path -> how many more times to corrupt it
    honour_range: bool = True

    @property
    def host(self) -> str:
        return urlparse(self.url).netloc

    def gets(self, file_path: str) -> list[dict[str, str]]:
        """Headers of each download request for `file_path` (hub CDN or ModelScope)."""
        out = []
        for path, query, headers in self.log:
            if path.startswith("/cdn/") or "/resolve/" in path:
                if path.endswith("/" + file_path) and headers.get("x-redirected") != "yes":
                    out.append(headers)
            elif path.endswith("/repo") and parse_qs(query).get("FilePath") == [file_path]:
                out.append(headers)
        return out

    def lfs(self, path: str) -> bool:
        return path.endswith(".safetensors")


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, data: Any) -> None:
            body = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _missing(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _file(self, repo: str, path: str) -> None:
            files = hub.repos.get(repo)
            if files is None or path not in files:
                return self._missing()
            data = files[path]
            if hub.corrupt.get(path, 0) > 0:
                hub.corrupt[path] -= 1
                data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]  # same size, wrong bytes
            start = 0
            rng = self.headers.get("Range")
            if rng and hub.honour_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            self.wfile.write(data[start:])

        def do_GET(self) -> None:
            url = urlparse(self.path)
            path = unquote(url.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            hub.log.append((path, url.query, headers))
            parts = path.strip("/").split("/")
            query = parse_qs(url.query)
            # hub: /api/models/{owner}/{name}/revision/{rev}?blobs=true
            if parts[:2] == ["api", "models"] and len(parts) == 6 and parts[4] == "revision":
                repo = "/".join(parts[2:4])
                if repo not in hub.repos:
                    return self._missing()
                siblings = []
                for name, data in hub.repos[repo].items():
                    entry: dict[str, Any] = {"rfilename": name, "size": len(data), "blobId": _git_sha1(data)}
                    if hub.lfs(name):
                        digest = hashlib.sha256(data).hexdigest()
                        entry["lfs"] = {"sha256": digest, "size": len(data), "pointerSize": 134}
                    siblings.append(entry)
                return self._json({"id": repo, "sha": "c0ffee" * 6 + "beef", "siblings": siblings})
            # hub: /{owner}/{name}/resolve/{rev}/{path}, LFS files redirected to the CDN
            if len(parts) >= 5 and parts[2] == "resolve":
                repo, file_path = "/".join(parts[:2]), "/".join(parts[4:])
                if hub.lfs(file_path):
                    self.send_response(302)
                    self.send_header("Location", f"/cdn/{repo}/{file_path}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    headers["x-redirected"] = "yes"
                    return None
                return self._file(repo, file_path)
            if parts[0] == "cdn":
                return self._file("/".join(parts[1:3]), "/".join(parts[3:]))
            # ModelScope: /api/v1/models/{owner}/{name}/repo/files?Revision=master&Recursive=true
            if parts[:3] == ["api", "v1", "models"] and parts[5:] == ["repo", "files"]:
                repo = "/".join(parts[3:5])
                if repo not in hub.repos:
                    return self._json({"Code": 10010205001, "Message": "model not found", "Success": False})
                listed = [
                    {
                        "Name": name.rsplit("/", 1)[-1],
                        "Path": name,
                        "Size": len(data),
                        "Sha256": hashlib.sha256(data).hexdigest(),
                        "Type": "blob",
                        "Revision": "master",
                    }
                    for name, data in hub.repos[repo].items()
                ] + [{"Name": "sub", "Path": "sub", "Size": 0, "Type": "tree", "Revision": "master"}]
                return self._json({"Code": 200, "Data": {"Files": listed}, "Success": True})
            # ModelScope: /api/v1/models/{owner}/{name}/repo?Revision=master&FilePath={path}
            if parts[:3] == ["api", "v1", "models"] and parts[5:] == ["repo"]:
                return self._file("/".join(parts[3:5]), query["FilePath"][0])
            return self._missing()

    return Handler


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    state = FakeHub(repos={REPO: _files()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", state.url)
    monkeypatch.setenv("MODELSCOPE_DOMAIN", state.host)
    monkeypatch.setenv("MODELSCOPE_URL_SCHEME", "http://")
    for name in ("HF_TOKEN", "MODELSCOPE_API_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    yield state
    server.shutdown()
    server.server_close()


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(library_dir=tmp_path / "lib", model_dir=tmp_path / "models", **kw)


def _wanted() -> dict[str, bytes]:
    return {p: b for p, b in _files().items() if not p.startswith((".", "onnx/"))}


def _assert_pulled(folder: Path) -> None:
    for path, data in _wanted().items():
        assert (folder / path).read_bytes() == data, path
    assert not (folder / ".gitattributes").exists() and not (folder / "onnx").exists()
    assert not list(folder.rglob("*.part"))
    assert local_copy(REPO, folder.parent.parent) == folder


def test_pull_from_the_hub(hub: FakeHub, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    [result] = pull_models(settings, REPO)
    folder = tmp_path / "models" / "smartalbum-tests" / "tiny-model"
    assert result.path == str(folder) and result.source == "huggingface"
    _assert_pulled(folder)
    checks = {f.path: f.checksum for f in result.files}
    assert checks == {
        "config.json": "git-sha1",
        "model.safetensors": "sha256",
        "sub/tokenizer.json": "git-sha1",
    }
    assert result.downloaded_bytes == sum(len(b) for b in _wanted().values())
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["revision"].startswith("c0ffee") and manifest["endpoint"] == hub.url
    # files are fetched at the listed commit; LFS files through the CDN redirect
    assert any(p == f"/{REPO}/resolve/{manifest['revision']}/model.safetensors" for p, _, _ in hub.log)
    assert any(p == f"/cdn/{REPO}/model.safetensors" for p, _, _ in hub.log)
    # a second pull checks what is there and downloads nothing
    again = pull(REPO, source_for("huggingface"), tmp_path / "models")
    assert again.downloaded_bytes == 0 and {f.state for f in again.files} == {"present"}


def test_pull_from_modelscope(hub: FakeHub, tmp_path: Path) -> None:
    settings = _settings(tmp_path, model_source="modelscope")
    [result] = pull_models(settings, REPO)
    assert result.source == "modelscope" and result.endpoint == hub.url
    _assert_pulled(Path(result.path))
    assert {f.checksum for f in result.files} == {"sha256"}  # ModelScope publishes sha256 for every file
    paths = [p for p, _, _ in hub.log]
    assert f"/api/v1/models/{REPO}/repo/files" in paths
    assert len(hub.gets("sub/tokenizer.json")) == 1
    assert not any("/resolve/" in p or p.startswith("/api/models/") for p in paths)  # no hub URL used


def test_sources_and_their_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_ENDPOINT", "MODELSCOPE_DOMAIN", "MODELSCOPE_URL_SCHEME"):
        monkeypatch.delenv(name, raising=False)
    assert source_for("huggingface").endpoint == "https://huggingface.co"
    assert source_for("hf-mirror").endpoint == "https://hf-mirror.com"
    assert source_for("modelscope").endpoint == "https://www.modelscope.cn"
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    assert source_for("huggingface").endpoint == "https://mirror.example"
    assert source_for("hf-mirror").endpoint == "https://mirror.example"
    monkeypatch.setenv("MODELSCOPE_DOMAIN", "modelscope.example")
    assert source_for("modelscope").endpoint == "https://modelscope.example"


def test_a_corrupted_download_is_refused_and_fetched_again(hub: FakeHub, tmp_path: Path) -> None:
    hub.corrupt = {"model.safetensors": 1, "config.json": 1}
    result = pull(REPO, source_for("huggingface"), tmp_path / "models")
    _assert_pulled(Path(result.path))
    attempts = {f.path: f.attempts for f in result.files}
    assert attempts == {"config.json": 2, "model.safetensors": 2, "sub/tokenizer.json": 1}
    assert len(hub.gets("model.safetensors")) == 2 and len(hub.gets("config.json")) == 2


def test_a_file_that_never_matches_is_refused(hub: FakeHub, tmp_path: Path) -> None:
    hub.corrupt = {"model.safetensors": 99}
    root = tmp_path / "models"
    with pytest.raises(ModelError) as err:
        pull(REPO, source_for("modelscope"), root)
    assert "model.safetensors" in err.value.message and "sha256 check" in err.value.message
    folder = root / "smartalbum-tests" / "tiny-model"
    assert not (folder / "model.safetensors").exists() and not list(folder.rglob("*.part"))
    assert local_copy(REPO, root) is None and not (folder / MANIFEST).exists()


def test_a_damaged_file_on_disk_is_fetched_again(hub: FakeHub, tmp_path: Path) -> None:
    root = tmp_path / "models"
    folder = Path(pull(REPO, source_for("huggingface"), root).path)
    weights = folder / "model.safetensors"
    weights.write_bytes(b"\0" * weights.stat().st_size)  # right size, wrong bytes: only the hash can tell
    assert local_copy(REPO, root) == folder  # listing checks sizes only
    before = len(hub.gets("model.safetensors"))
    result = pull(REPO, source_for("huggingface"), root)
    _assert_pulled(folder)
    assert len(hub.gets("model.safetensors")) == before + 1
    assert {f.path: f.state for f in result.files}["model.safetensors"] == "downloaded"


def test_a_partial_download_resumes_with_a_range_request(hub: FakeHub, tmp_path: Path) -> None:
    root = tmp_path / "models"
    folder = root / "smartalbum-tests" / "tiny-model"
    folder.mkdir(parents=True)
    data = _files()["model.safetensors"]
    (folder / "model.safetensors.part").write_bytes(data[:100_000])
    result = pull(REPO, source_for("huggingface"), root)
    _assert_pulled(folder)
    [get] = hub.gets("model.safetensors")
    assert get.get("range") == "bytes=100000-"
    weights = {f.path: f for f in result.files}["model.safetensors"]
    assert weights.state == "resumed" and weights.size == len(data)
    others = sum(len(b) for p, b in _wanted().items() if p != "model.safetensors")
    assert result.downloaded_bytes == others + len(data) - 100_000


def test_a_server_that_ignores_range_starts_the_file_over(hub: FakeHub, tmp_path: Path) -> None:
    hub.honour_range = False
    root = tmp_path / "models"
    folder = root / "smartalbum-tests" / "tiny-model"
    folder.mkdir(parents=True)
    stale = b"stale bytes from another version"
    (folder / "model.safetensors.part").write_bytes(stale)
    result = pull(REPO, source_for("modelscope"), root)
    _assert_pulled(folder)
    assert hub.gets("model.safetensors")[0].get("range") == f"bytes={len(stale)}-"  # asked, got it all
    assert {f.path: f.state for f in result.files}["model.safetensors"] == "downloaded"


def test_unknown_model_says_so(hub: FakeHub, tmp_path: Path) -> None:
    for source in ("huggingface", "modelscope"):
        with pytest.raises(ModelError) as err:
            pull("nobody/no-such-model", source_for(source), tmp_path / "models")
        assert "no-such-model" in err.value.message, source


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_offline_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(ModelError) as err:
        pull(REPO, source_for("huggingface"), tmp_path / "models")
    assert err.value.message == f"cannot reach 127.0.0.1:{port}"
    assert err.value.hint is not None
    assert (
        "model_source = 'modelscope'" in err.value.hint
        and "HF_ENDPOINT=https://hf-mirror.com" in err.value.hint
    )
    assert "folder" in err.value.hint
    monkeypatch.setenv("MODELSCOPE_DOMAIN", f"127.0.0.1:{port}")
    monkeypatch.setenv("MODELSCOPE_URL_SCHEME", "http://")
    with pytest.raises(ModelError) as err:
        pull(REPO, source_for("modelscope"), tmp_path / "models")
    assert err.value.message == f"cannot reach 127.0.0.1:{port}"
    assert err.value.hint and "model_source = 'huggingface'" in err.value.hint


def _cli(library: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--library", str(library), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def _library(tmp_path: Path, **values: str) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    lines = [f"model_dir = {json.dumps(str(tmp_path / 'models'))}"] + [
        f"{k} = {json.dumps(v)}" for k, v in values.items()
    ]
    (lib / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lib


def test_cli_models_lists_pulls_and_reports_sizes(hub: FakeHub, tmp_path: Path) -> None:
    lib = _library(tmp_path, vlm_model=REPO, speech_model="bundled:whisper-base", model_source="hf-mirror")
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "hf-cache")}
    before = _cli(lib, env, "models", "--json")
    assert before.returncode == 0, before.stderr
    listed = json.loads(before.stdout)
    assert listed["source"] == "hf-mirror" and listed["endpoint"] == hub.url
    assert listed["model_dir"] == str(tmp_path / "models")
    by_name = {m["name"]: m for m in listed["models"]}
    assert set(by_name) == {"vision", "speech", "embedding", "ocr", "faces"}
    vision = by_name["vision"]
    assert vision["state"] == "not downloaded" and vision["size"] is None and vision["location"] is None
    assert "vision stage" in vision["used_by"] and vision["setting"] == "vlm_model"
    for name in ("speech", "embedding", "ocr", "faces"):  # shipped inside wheels
        assert by_name[name]["state"] == "bundled" and by_name[name]["size"] > 1_000_000, name

    pulled = _cli(lib, env, "models", "pull", "vision")
    assert pulled.returncode == 0, pulled.stderr
    folder = tmp_path / "models" / "smartalbum-tests" / "tiny-model"
    assert f"{REPO}: " in pulled.stdout and "fetched from hf-mirror" in pulled.stdout
    _assert_pulled(folder)

    after = json.loads(_cli(lib, env, "models", "--json").stdout)
    vision = {m["name"]: m for m in after["models"]}["vision"]
    assert vision["state"] == "downloaded" and vision["location"] == str(folder)
    on_disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert vision["size"] == on_disk and on_disk > sum(len(b) for b in _wanted().values())  # + manifest

    again = _cli(lib, env, "models", "pull", "all", "--json")
    assert again.returncode == 0, again.stderr
    [result] = json.loads(again.stdout)  # the bundled ones are not fetched
    assert result["repo_id"] == REPO and result["downloaded_bytes"] == 0

    bundled = _cli(lib, env, "models", "pull", "speech")
    assert bundled.returncode != 0 and "nothing to download for speech" in bundled.stderr


def test_cli_offline_prints_one_error_with_the_hint(tmp_path: Path) -> None:
    lib = _library(tmp_path, vlm_model=REPO)
    port = _closed_port()
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HUB_CACHE": str(tmp_path / "hf-cache")}
    proc = _cli(lib, env, "models", "pull", "vision")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == f"error: cannot reach 127.0.0.1:{port}", proc.stderr
    assert lines[1].startswith("hint: set model_source = 'modelscope' or HF_ENDPOINT=https://hf-mirror.com")
    assert len(lines) == 2 and "Traceback" not in proc.stderr


def test_the_vision_model_loads_from_a_pull(
    hub: FakeHub, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A hub id that is not downloaded is pulled from model_source (here ModelScope) when the analyser loads,
    and loaded from that folder; the producer version still names the id."""
    from smartalbum.vision.qwen_vl import QwenVLAnalyser
    from tiny_qwen import tiny_qwen_dir

    tiny = tiny_qwen_dir(tmp_path_factory)
    repo = "smartalbum-tests/tiny-qwen3-vl"
    hub.repos[repo] = {str(p.relative_to(tiny)): p.read_bytes() for p in tiny.rglob("*") if p.is_file()}
    settings = _settings(
        tmp_path, vlm_model=repo, vlm_device="cpu", vlm_dtype="fp32", model_source="modelscope"
    )
    analyser = QwenVLAnalyser(settings)
    analyser.load()
    folder = tmp_path / "models" / "smartalbum-tests" / "tiny-qwen3-vl"
    assert analyser.loaded and analyser._model.name_or_path == str(folder)
    assert local_copy(repo, tmp_path / "models") == folder
    assert analyser.version.startswith(repo + "|")
    assert any(p == f"/api/v1/models/{repo}/repo/files" for p, _, _ in hub.log)
    listed = {m.name: m for m in configured_models(settings)}["vision"]
    assert listed.state == "downloaded" and listed.location == str(folder)


def test_speech_uses_a_pulled_copy_first(tmp_path: Path) -> None:
    from smartalbum.speech.whisper_backend import WhisperTranscriber

    root = tmp_path / "models"
    folder = root / "Systran" / "faster-whisper-base"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"x" * 10)
    files = [{"path": "model.bin", "size": 10, "checksum": "sha256"}]
    (folder / MANIFEST).write_text(json.dumps({"repo_id": "Systran/faster-whisper-base", "files": files}))
    w = WhisperTranscriber("base", model_dir=root)  # a size name stands for Systran/faster-whisper-base
    assert w._path() == str(folder)
    assert "faster-whisper:base:" in w.version  # the producer version names the model, not the folder
    (folder / "model.bin").write_bytes(b"x" * 9)  # no longer the pulled size: not a complete copy
    assert local_copy("Systran/faster-whisper-base", root) is None
