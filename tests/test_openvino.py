"""The openvino engine: the tiny random Qwen3-VL (real transformers classes) exported to OpenVINO with
optimum-intel in this session (`make export-env`; cached under .test-artifacts/openvino), run by OpenVINO
GenAI's continuous-batching pipeline.

Exported at full precision, it must answer exactly what the transformers backend answers for the same
photos: same prompt (vision/prompt.py), same image preprocessing, greedy decoding; and `index` must store
those answers through the same parser and catalog path. Also: the engine that vlm_backend = "auto" picks,
what `models` lists, the errors for folders that are not OpenVINO exports, the bench's OpenVINO rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.ov_export import DONE, build_once, export_openvino
from PIL import Image

from smartalbum.catalog import Catalog
from smartalbum.config import Settings, load_settings
from smartalbum.errors import ModelError
from smartalbum.models import configured_models, pull_targets
from smartalbum.pipeline.run import index_library
from smartalbum.vision import backends
from smartalbum.vision.backends import resolve_vlm_backend, vlm_analyser
from smartalbum.vision.openvino_backend import (
    OpenVINOAnalyser,
    export_kv_precision,
    fit_model_grid,
    kv_cache_gb,
    kv_value_bytes,
    model_grid,
    release_weight_pages,
    to_history,
)
from smartalbum.vision.parse import result_from_raw
from smartalbum.vision.prompt import USER_PROMPT, build_messages
from smartalbum.vision.qwen_vl import MIN_PIXELS, QwenVLAnalyser, fit_pixels
from tests.helpers import make_photo
from tiny_qwen import tiny_qwen_dir

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".test-artifacts" / "openvino"


def _source_key(tiny: Path) -> str:
    """The export is cached under a name that changes when anything it is made from does: the tiny model's
    recipe and its weights and config as built here, the export script, the export tooling's packages
    (.venv-export's dist-info names carry their versions) and the OpenVINO that converts and runs it."""
    import openvino

    h = hashlib.sha256()
    for f in (ROOT / "tests" / "tiny_qwen.py", ROOT / "bench" / "ov_export.py", tiny / "model.safetensors",
              tiny / "config.json"):  # fmt: skip
        h.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    tooling = sorted(p.name for p in (ROOT / ".venv-export").glob("*.dist-info"))
    h.update("\n".join([*tooling, openvino.__version__]).encode())
    return h.hexdigest()[:12]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_qwen_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_ov(tiny: Path) -> Path:
    out = CACHE / f"tiny-qwen3-vl-fp32-{_source_key(tiny)}"
    export_openvino(tiny, out, "fp32")
    return out


def _settings(tmp: Path, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "vlm_device": "cpu",
        "vlm_dtype": "fp32",
        "vlm_max_new_tokens": 24,
        "embed_model": "offline",
        "workers": 1,
        "ocr_enabled": False,
        "face_recognition": False,
        "model_dir": tmp / "models",
    }
    return load_settings(tmp / "library", **{**base, **kw})


def _images() -> list[Image.Image]:
    noise = Image.effect_noise((300, 300), 60).convert("RGB")
    return [
        Image.new("RGB", (320, 240), (200, 30, 30)),
        Image.new("RGB", (240, 320), (20, 200, 30)),
        noise,
        # sides in multiples of 32 px: no resampling, whose pixels differ a little between the two libraries
        Image.linear_gradient("L").convert("RGB").resize((384, 192)),
        # larger than vlm_max_pixels, 2:1 and 16:9: scaled down to the grid transformers uses (a 2:1 thumbnail
        # left to OpenVINO GenAI's own rounding got 200 image tokens, over the 196 that 448x448 allows)
        Image.linear_gradient("L").convert("RGB").resize((1024, 512)),
        Image.linear_gradient("L").rotate(90).convert("RGB").resize((1024, 576)),
    ]


def test_export_cache_key_follows_the_checkpoint(tmp_path: Path, tiny: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    assert _source_key(copy) == _source_key(tiny)
    for name in ("config.json", "model.safetensors"):  # other weights or config: another export
        changed = tmp_path / name
        shutil.copytree(tiny, changed)
        with open(changed / name, "ab") as f:
            f.write(b" ")
        assert _source_key(changed) != _source_key(tiny), name


def test_prompt_reaches_openvino_as_the_prompt_builder_wrote_it() -> None:
    history = to_history(build_messages(None))
    assert [m["role"] for m in history] == ["system", "user"]
    # the image sits where build_messages put it (before the request), as OpenVINO GenAI's tag
    assert history[1]["content"] == "<ov_genai_image_0>" + USER_PROMPT
    with pytest.raises(ValueError, match="video"):
        to_history([{"role": "user", "content": [{"type": "video"}]}])


def test_openvino_answers_what_transformers_answers(tmp_path: Path, tiny: Path, tiny_ov: Path) -> None:
    images = _images()
    ov = OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(tiny_ov), vlm_batch_size=4))
    answers = ov.generate_raw(images)
    assert ov.engine == "continuous"  # the photos went to the continuous-batching pipeline together
    pt = QwenVLAnalyser(_settings(tmp_path, vlm_model=str(tiny), vlm_batch_size=1))
    expected = [pt.generate_raw([img])[0] for img in images]
    assert answers == expected
    assert len(set(answers)) > 1  # different photos, different answers: the images reach the model
    assert all(a.strip() for a in answers)
    # the single-request pipeline (the fallback) answers the same
    single = OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(tiny_ov)), pipeline="single")
    assert single.generate_raw(images[:2]) == expected[:2]
    assert single.engine == "single"


def test_index_with_openvino_stores_what_the_parser_makes_of_each_answer(
    tmp_path: Path, tiny: Path, tiny_ov: Path
) -> None:
    src = tmp_path / "photos"
    colors = [(200, 30, 30), (20, 200, 30), (30, 30, 200), (220, 220, 40), (10, 10, 10)]
    for i, color in enumerate(colors):
        make_photo(src / f"p{i}.jpg", size=(160 + 48 * i, 120 + 16 * i), color=color, seed=i)
    ov_settings = _settings(tmp_path, vlm_backend="openvino", vlm_model=str(tiny_ov), vlm_batch_size=4)
    pt_settings = _settings(tmp_path, vlm_backend="transformers", vlm_model=str(tiny), vlm_batch_size=1)
    with Catalog(ov_settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        report = index_library(cat, ov_settings)
        (vlm,) = report.analyses
        assert (vlm.producer, vlm.todo, vlm.model_error) == ("openvino", 5, None)
        assert vlm.ok + vlm.partial + vlm.unparsed + vlm.errors == 5
        # the transformers backend over the same photos, into the same catalog, for comparison
        (pt,) = index_library(cat, pt_settings).analyses
        assert (pt.producer, pt.todo) == ("qwen_vl", 5)
        hashes = [p["hash"] for p in (cat.photo(str((src / f"p{i}.jpg").resolve())) for i in range(5))]
        for h in hashes:
            rows = {a["producer"]: a for a in cat.analyses(h)}
            assert set(rows) == {"openvino", "qwen_vl"}
            ov_row, pt_row = rows["openvino"], rows["qwen_vl"]
            assert ov_row["producer_version"].startswith(tiny_ov.name + "|")
            assert ov_row["raw"] == pt_row["raw"]
            # what is stored is exactly the shared parser's verdict on the answer
            parsed = result_from_raw(h, ov_row["raw"])
            assert ov_row["status"] == parsed.status == pt_row["status"]
            assert ov_row["data"] == pt_row["data"]
            assert ov_row["status"] in {"ok", "partial", "unparsed"}
        statuses = [{a["producer"]: a for a in cat.analyses(h)}["openvino"]["status"] for h in hashes]
        assert vlm.unparsed == statuses.count("unparsed")
        # a second run with the same model and prompt asks again only what could not be parsed
        assert [a.todo for a in index_library(cat, ov_settings).analyses] == [vlm.unparsed]


def test_threads_loading_at_once_build_one_pipeline(
    tmp_path: Path, tiny_ov: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    ov = OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(tiny_ov)), pipeline="single")
    builds: list[Any] = []
    second = threading.Event()
    real_build = OpenVINOAnalyser._build

    def build(self: OpenVINOAnalyser, path: Path, device: str) -> tuple[Any, str]:
        builds.append(path)
        if len(builds) > 1:
            second.set()
        else:  # give another thread the time to get here too, if load() lets it
            second.wait(timeout=3)
        return real_build(self, path, device)

    monkeypatch.setattr(OpenVINOAnalyser, "_build", build)
    threads = [threading.Thread(target=ov.load) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert ov.loaded
    ov.unload()
    assert not ov.loaded


def test_not_an_openvino_export_says_so(tmp_path: Path, tiny: Path, tiny_ov: Path) -> None:
    # a transformers checkpoint given to the openvino engine
    with pytest.raises(ModelError) as err:
        OpenVINOAnalyser(_settings(tmp_path, vlm_openvino_model=str(tiny))).load()
    assert "transformers checkpoint, not an OpenVINO export" in err.value.message
    assert "optimum-cli export openvino" in (err.value.hint or "")
    # an export without its tokenizer
    broken = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_ov, broken)
    (broken / "openvino_detokenizer.xml").unlink()
    with pytest.raises(ModelError, match=r"incomplete: openvino_detokenizer\.xml missing"):
        OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(broken))).load()
    # a folder that does not exist
    with pytest.raises(ModelError, match="does not exist"):
        OpenVINOAnalyser(_settings(tmp_path, vlm_openvino_model=str(tmp_path / "nowhere"))).load()
    # a CUDA device is not an OpenVINO device
    with pytest.raises(ModelError, match="not an OpenVINO device"):
        OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(tiny_ov), vlm_device="cuda")).load()


def test_openvino_images_have_the_grid_transformers_uses(tmp_path: Path, tiny: Path) -> None:
    settings = _settings(tmp_path, vlm_model=str(tiny))
    pt = QwenVLAnalyser(settings)
    pt.load()
    for size in [(1024, 512), (1024, 576), (1024, 768), (768, 1024), (300, 300), (100, 50), (4000, 900)]:
        image = Image.new("RGB", size, (90, 60, 30))
        grid = fit_model_grid(image, settings.vlm_max_pixels)
        # the processor's own grid (in 16-px patches) for the image the transformers engine gives it
        inputs = pt.model_inputs([build_messages(image)], [fit_pixels(image, settings.vlm_max_pixels)])
        (_, rows, cols), *_ = inputs["image_grid_thw"].tolist()
        assert (grid.width, grid.height) == (cols * 16, rows * 16), size
        assert grid.width * grid.height <= settings.vlm_max_pixels  # at most 196 image tokens at 448x448


def test_model_grid_is_transformers_smart_resize() -> None:
    """The engine rounds sides as transformers' processor does, without importing it (torch: ~0.7 GB)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    sides = (3, 15, 16, 17, 31, 48, 100, 333, 448, 449, 1000, 3000)
    for max_pixels in (32 * 32, 448 * 448, 1024 * 1024):
        min_pixels = min(MIN_PIXELS, max_pixels)
        for h in sides:
            for w in sides:
                if max(h, w) / min(h, w) > 200:
                    with pytest.raises(ValueError, match="aspect ratio"):
                        model_grid(h, w, min_pixels, max_pixels)
                    continue
                expected = smart_resize(h, w, factor=32, min_pixels=min_pixels, max_pixels=max_pixels)
                assert model_grid(h, w, min_pixels, max_pixels) == expected, (h, w, max_pixels)


def test_the_openvino_engine_runs_without_torch(tmp_path: Path, tiny_ov: Path) -> None:
    """torch and transformers cost the engine's process ~0.7 GB; nothing on its path imports them, from
    choosing the engine ("auto" asks whether there is a CUDA GPU) to the answers."""
    code = (
        "import sys; from pathlib import Path; from PIL import Image\n"
        "from smartalbum.config import load_settings\n"
        "from smartalbum.vision import backends\n"
        "backends._GPU_DRIVER_FILES = ()  # a machine without a GPU driver, whatever runs the test\n"
        "from smartalbum.vision.backends import vlm_analyser\n"
        f"s = load_settings(Path({str(tmp_path / 'lib')!r}), vlm_backend='auto', vlm_model={str(tiny_ov)!r},"
        " vlm_max_new_tokens=16)\n"
        "a = vlm_analyser(s); print(a.name, len(a.generate_raw([Image.new('RGB', (300, 200))])))\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split("\n")[:2] == ["openvino 1", "[]"], out.stderr[-3000:]


def _cpu(monkeypatch: pytest.MonkeyPatch, cuda: bool = False) -> None:
    """This machine as the test describes it: a CUDA GPU or not (openvino-genai is installed either way)."""
    monkeypatch.setattr(backends, "cuda_available", lambda: cuda)


def test_auto_picks_the_engine_for_this_machine(
    tmp_path: Path, tiny: Path, tiny_ov: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpu(monkeypatch)  # a CPU machine with openvino-genai installed
    # an OpenVINO model on the machine: openvino
    auto = _settings(tmp_path, vlm_backend="auto", vlm_openvino_model=str(tiny_ov))
    assert resolve_vlm_backend(auto) == "openvino"
    assert isinstance(vlm_analyser(auto), OpenVINOAnalyser)
    # vlm_model itself an OpenVINO export: openvino, on that folder
    folder = _settings(tmp_path, vlm_backend="auto", vlm_model=str(tiny_ov))
    assert resolve_vlm_backend(folder) == "openvino"
    assert vlm_analyser(folder).version.startswith(tiny_ov.name + "|")
    # only the transformers model is here: transformers (no second download behind the user's back)
    only_pt = _settings(tmp_path, vlm_backend="auto", vlm_model=str(tiny), vlm_openvino_model="Org/not-here")
    assert resolve_vlm_backend(only_pt) == "transformers"
    assert isinstance(vlm_analyser(only_pt), QwenVLAnalyser)
    # nothing downloaded yet: the OpenVINO model (smaller, faster here) is the one to fetch
    fresh = _settings(tmp_path, vlm_backend="auto", vlm_model="Org/pt-not-here", vlm_openvino_model="Org/ov")
    assert resolve_vlm_backend(fresh) == "openvino"
    # an explicit choice is kept
    assert resolve_vlm_backend(_settings(tmp_path, vlm_backend="transformers")) == "transformers"
    assert resolve_vlm_backend(_settings(tmp_path, vlm_backend="openvino", vlm_model=str(tiny))) == "openvino"
    # vlm_device an OpenVINO device (an Intel GPU): openvino there
    gpu = _settings(tmp_path, vlm_backend="auto", vlm_device="GPU", vlm_model=str(tiny_ov))
    assert resolve_vlm_backend(gpu) == "openvino"


def test_auto_runs_openvino_only_for_the_model_it_is_an_export_of(
    tmp_path: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpu(monkeypatch)
    # neither model on this machine (whatever this machine's hub cache holds)
    monkeypatch.setattr(backends, "transformers_model_local", lambda settings: False)
    # the default pair: vlm_openvino_model is the INT4 export of the default vlm_model
    default = _settings(tmp_path, vlm_backend="auto")
    assert backends.OPENVINO_EXPORT_OF[default.vlm_openvino_model] == default.vlm_model
    assert resolve_vlm_backend(default) == "openvino"
    # another vlm_model with the default OpenVINO model: that model, on transformers (not the 2B export)
    big = _settings(tmp_path, vlm_backend="auto", vlm_model="Qwen/Qwen3-VL-8B-Instruct")
    assert resolve_vlm_backend(big) == "transformers"
    analyser = vlm_analyser(big)
    assert isinstance(analyser, QwenVLAnalyser)
    assert analyser.model_id == "Qwen/Qwen3-VL-8B-Instruct"
    local = _settings(tmp_path, vlm_backend="auto", vlm_model=str(tiny))
    assert resolve_vlm_backend(local) == "transformers"


def test_auto_with_a_device_openvino_cannot_use_is_transformers(
    tmp_path: Path, tiny_ov: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpu(monkeypatch)  # vlm_device names the device, whether CUDA works here or not
    for device in ("mps", "cuda", "cuda:1", "xpu"):
        settings = _settings(tmp_path, vlm_backend="auto", vlm_device=device, vlm_openvino_model=str(tiny_ov))
        assert resolve_vlm_backend(settings) == "transformers", device
    # the OpenVINO model given explicitly on a CPU: openvino
    cpu = _settings(tmp_path, vlm_backend="auto", vlm_device="cpu", vlm_openvino_model=str(tiny_ov))
    assert resolve_vlm_backend(cpu) == "openvino"


def test_auto_with_a_cuda_gpu_is_transformers(
    tmp_path: Path, tiny_ov: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpu(monkeypatch, cuda=True)
    gpu = _settings(tmp_path, vlm_backend="auto", vlm_device="auto", vlm_openvino_model=str(tiny_ov))
    assert resolve_vlm_backend(gpu) == "transformers"
    assert isinstance(vlm_analyser(gpu), QwenVLAnalyser)
    # vlm_device "cpu" asks for the CPU even here: the CPU engine
    cpu = _settings(tmp_path, vlm_backend="auto", vlm_device="cpu", vlm_openvino_model=str(tiny_ov))
    assert resolve_vlm_backend(cpu) == "openvino"


def test_auto_with_a_queue_names_the_same_queue_on_every_machine(
    tmp_path: Path, tiny_ov: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smartalbum.queue.app import queue_name

    queued = {"vlm_backend": "auto", "vlm_openvino_model": str(tiny_ov), "queue_url": "redis://host:6379/0"}
    names = set()
    for cuda in (False, True):  # the coordinator on a CPU, a worker on a CUDA GPU, or the other way round
        _cpu(monkeypatch, cuda=cuda)
        analyser = vlm_analyser(_settings(tmp_path, **queued))
        names.add(queue_name(analyser.name, analyser.version))
    assert len(names) == 1
    (name,) = names
    assert "qwen_vl" in name
    # without a queue this CPU would run openvino
    _cpu(monkeypatch)
    assert resolve_vlm_backend(_settings(tmp_path, **{**queued, "queue_url": None})) == "openvino"


def test_auto_says_why_once(
    tmp_path: Path, tiny_ov: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _cpu(monkeypatch)
    monkeypatch.setattr(backends, "_LOGGED", set())
    settings = _settings(tmp_path, vlm_backend="auto", vlm_device="mps")
    with caplog.at_level(logging.DEBUG, logger=backends.__name__):
        for _ in range(3):  # e.g. three filtered searches
            assert resolve_vlm_backend(settings) == "transformers"
    lines = [r for r in caplog.records if r.name == backends.__name__]
    assert len(lines) == 1
    assert lines[0].levelno == logging.DEBUG
    assert "'mps' is not an OpenVINO device" in lines[0].getMessage()


def test_models_lists_the_openvino_model_and_its_engine(
    tmp_path: Path, tiny: Path, tiny_ov: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ov = {m.name: m for m in configured_models(_settings(tmp_path, vlm_backend="openvino"))}
    assert ov["vision"].model == "OpenVINO/Qwen3-VL-2B-Instruct-int4-ov"
    assert ov["vision"].setting == "vlm_openvino_model"
    assert "openvino engine" in ov["vision"].used_by
    assert (ov["vision"].state, ov["vision"].repo_ids) == ("not downloaded", [ov["vision"].model])
    assert pull_targets(_settings(tmp_path, vlm_backend="openvino"), "vision") == [ov["vision"].model]
    # a local export folder as vlm_model is listed as such
    local = {m.name: m for m in configured_models(_settings(tmp_path, vlm_backend="openvino",
                                                            vlm_model=str(tiny_ov)))}  # fmt: skip
    assert (local["vision"].state, local["vision"].location) == ("local folder", str(tiny_ov))
    # auto on this CPU with only the transformers model here: both are listed, each with its engine
    _cpu(monkeypatch)
    only_pt = _settings(
        tmp_path,
        vlm_backend="auto",
        vlm_device="auto",
        vlm_model=str(tiny),
        vlm_openvino_model="Org/ov-not-here",
    )
    auto = {m.name: m for m in configured_models(only_pt)}
    assert "transformers engine" in auto["vision"].used_by
    assert "openvino engine" in auto["vision-openvino"].used_by
    assert auto["vision-openvino"].repo_ids == ["Org/ov-not-here"]
    # ... but not on a CUDA machine, nor for a vlm_model the OpenVINO model is not an export of
    _cpu(monkeypatch, cuda=True)
    assert "vision-openvino" not in [m.name for m in configured_models(only_pt)]
    _cpu(monkeypatch)
    other = _settings(tmp_path, vlm_backend=" Auto ", vlm_model=str(tiny))
    rows = {m.name: m for m in configured_models(other)}
    assert "transformers engine, chosen by vlm_backend auto" in rows["vision"].used_by
    assert "vision-openvino" not in rows
    # an engine name as written by hand (spaces, capitals) is the engine
    openai = [m for m in configured_models(_settings(tmp_path, vlm_backend=" OpenAI ")) if m.name == "vision"]
    assert [(m.kind, m.state) for m in openai] == [("server", "on the server")]
    # the transformers engine alone lists no OpenVINO model
    names = [m.name for m in configured_models(_settings(tmp_path, vlm_backend="transformers"))]
    assert "vision-openvino" not in names


def test_models_cli_json_names_the_engine(tmp_path: Path, tiny_ov: Path) -> None:
    env_lib = tmp_path / "lib"
    proc = subprocess.run(
        [sys.executable, "-c", "from smartalbum.cli import run; run()", "--library", str(env_lib), "models",
         "--json"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
        env={**__import__("os").environ, "SMARTALBUM_VLM_BACKEND": "openvino",
             "SMARTALBUM_VLM_MODEL": str(tiny_ov)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {m["name"]: m for m in json.loads(proc.stdout)["models"]}
    assert rows["vision"]["state"] == "local folder"
    assert "openvino engine" in rows["vision"]["used_by"]


def test_export_waits_for_another_export_into_the_same_folder(
    tmp_path: Path, tiny: Path, tiny_ov: Path
) -> None:
    import threading

    out = tmp_path / "cache" / "model-ov"
    holding, started = threading.Event(), threading.Event()
    seconds: list[float] = []

    def other_process() -> None:  # another export of the same model into the same cache
        with build_once(out, DONE, "fp32") as folder:
            assert folder is not None and folder != out
            holding.set()
            started.wait(timeout=30)
            shutil.copytree(tiny_ov, folder, dirs_exist_ok=True)
            (folder / "written-by-the-other-export").write_text("1", encoding="utf-8")

    other = threading.Thread(target=other_process)
    other.start()
    holding.wait(timeout=30)
    assert not (out / DONE).exists()  # not finished yet: this export must wait, then use it
    waiting = threading.Thread(
        target=lambda: (started.set(), seconds.append(export_openvino(tiny, out, "fp32")))
    )
    waiting.start()
    other.join()
    waiting.join()
    assert seconds == [0.0]  # no second export, and the finished one was not deleted
    assert (out / "written-by-the-other-export").is_file()
    assert (out / DONE).read_text(encoding="utf-8") == "fp32"
    assert out.stat().st_mode & 0o755 == 0o755  # readable by all, as a folder made by mkdir
    assert sorted(p.name for p in out.parent.iterdir()) == [".lock", out.name]  # no temporary folders left
    # a build that fails leaves the finished one as it was, and nothing of its own
    broken = tmp_path / "cache" / "broken"
    with pytest.raises(RuntimeError), build_once(broken, DONE) as folder:
        assert folder is not None
        (folder / "half").write_text("x", encoding="utf-8")
        raise RuntimeError("the export failed")
    assert sorted(p.name for p in out.parent.iterdir()) == [".lock", out.name]
    with build_once(out, DONE) as again:
        assert again is None


@pytest.mark.slow
def test_vlm_bench_smoke_run_openvino(tiny_ov: Path) -> None:
    """bench/vlm.py's OpenVINO rows next to PyTorch's, on this session's export (the random-model exports the
    real run makes take minutes even at the tiny size)."""
    out = subprocess.run(
        [sys.executable, "bench/vlm.py", "--arch", "tiny", "--engines", "torch", "--ov-model", str(tiny_ov),
         "--batch-sizes", "1,2", "--new-tokens", "4", "--runs", "1", "--device", "cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    num = r"[\d.]+ \| "
    rows = re.findall(r"^\| (torch \S+|openvino \S+) \| ([12]) \| " + num * 6 + r"\d+ \|$", out.stdout, re.M)
    assert [(e.split()[0], b) for e, b in rows] == [
        ("torch", "1"), ("torch", "2"), ("openvino", "1"), ("openvino", "2")
    ], out.stdout  # fmt: skip
    assert rows[2][0] == f"openvino {tiny_ov.name}"


def test_vlm_dtype_sets_openvinos_precision(tmp_path: Path, tiny_ov: Path) -> None:
    """vlm_dtype reaches OpenVINO: on a CPU with native bf16 (AMX), OpenVINO's own choice is bf16, whose
    answers differ from the transformers backend's float32 ones (the equality test above needs f32)."""
    auto = OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(tiny_ov), vlm_dtype="auto"))
    assert auto.properties == {}
    for dtype, hint in (("fp32", "f32"), ("bfloat16", "bf16"), ("half", "f16")):
        analyser = OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(tiny_ov), vlm_dtype=dtype))
        assert analyser.properties == {"INFERENCE_PRECISION_HINT": hint}
    with pytest.raises(ModelError, match="unsupported vlm_dtype"):
        OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(tiny_ov), vlm_dtype="int3"))


def _mapped_kib(files: list[Path]) -> dict[str, int | None]:
    """Resident KiB of this process's mappings of each file (summed), None for a file that is not mapped."""
    wanted = {str(f.resolve()): f.name for f in files}
    out: dict[str, int | None] = {name: None for name in wanted.values()}
    current: str | None = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+$", head[0]):
            current = wanted.get(head[5]) if len(head) > 5 else None
        elif current is not None and head[0] == "Rss:":
            out[current] = (out[current] or 0) + int(head[1])
    return out


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/smaps (Linux)")
def test_release_weight_pages_drops_that_folders_mapped_weights_and_loses_nothing(tmp_path: Path) -> None:
    model, other, linked = tmp_path / "model", tmp_path / "other", tmp_path / "hub-snapshot"
    for folder in (model, other, linked):
        folder.mkdir()
    data = bytes(range(256)) * 16384  # 4 MiB
    (model / "blob-w").write_bytes(data)  # a hub cache's blobs have no suffix
    (other / "v.bin").write_bytes(data)
    (model / "p.bin").write_bytes(data)
    (linked / "l.bin").symlink_to(model / "blob-w")  # ... and its snapshot links to them
    (linked / "p.bin").symlink_to(model / "p.bin")
    files = [model / "blob-w", other / "v.bin", model / "p.bin"]
    handles = [open(f, "rb") for f in files]  # noqa: SIM115 (closed below)
    maps = [mmap.mmap(h.fileno(), 0, access=mmap.ACCESS_READ) for h in handles[:2]]
    # a private mapping (its pages could be the process's own copies): never dropped
    maps.append(mmap.mmap(handles[2].fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ))
    try:
        assert all(m[:] == data for m in maps)  # every page read: resident
        before = _mapped_kib(files)
        assert before == {"blob-w": 4096, "v.bin": 4096, "p.bin": 4096}
        assert release_weight_pages(tmp_path / "nothing-here") == 0
        assert release_weight_pages(linked) == len(data)  # through the link: model/blob-w
        # another folder's and the private mapping: untouched
        assert _mapped_kib(files) == {"blob-w": 0, "v.bin": 4096, "p.bin": 4096}
        assert maps[0][:] == data  # read again from the file, unchanged
    finally:
        for m, h in zip(maps, handles, strict=True):
            m.close()
            h.close()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/smaps (Linux)")
def test_loading_releases_the_exports_mapped_weight_pages(tmp_path: Path, tiny_ov: Path) -> None:
    """OpenVINO keeps the export's weight files mapped after repacking them; the load's warm-up inference
    is followed by dropping those pages (the answers after it are checked against transformers above)."""
    weights = sorted(tiny_ov.glob("openvino_*_model.bin"))
    analyser = OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(tiny_ov)))
    analyser.load()
    resident = _mapped_kib(weights)
    assert resident["openvino_language_model.bin"] is not None  # OpenVINO maps it: the check is real
    assert all(kib == 0 for kib in resident.values() if kib is not None), resident
    assert all(a.strip() for a in analyser.generate_raw(_images()[:2]))


def test_kv_cache_is_sized_at_the_cache_precision(tmp_path: Path, tiny_ov: Path) -> None:
    """The 2B model's 28 layers x 8 KV heads x 128: 57,344 B a token in u8, twice that in f16; eight photos
    of 1,604 tokens (prompt allowance, image, 384 new) fit 1 GB in u8 and need 2 GB in f16."""
    text = {"num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128}
    (tmp_path / "config.json").write_text(json.dumps({"text_config": text}))
    assert kv_cache_gb(tmp_path, 8, 1604, 1) == 1
    assert kv_cache_gb(tmp_path, 8, 1604, 2) == 2
    assert kv_cache_gb(tmp_path, 16, 1604, 1) == 2
    assert kv_value_bytes("CPU", {"KV_CACHE_PRECISION": "u8"}) == 1
    assert kv_value_bytes("CPU", {"KV_CACHE_PRECISION": "f16"}) == 2
    assert kv_value_bytes("CPU", {"KV_CACHE_PRECISION": "u4"}) == 0.5
    assert kv_value_bytes("NO_SUCH_DEVICE", {}) == 2  # OpenVINO cannot say: 16 bits
    assert kv_value_bytes("CPU", {}) == 1  # OpenVINO's x86 CPU default: u8
    # optimum writes f16 into an unquantized export's runtime options, and OpenVINO compiles it so
    assert export_kv_precision(tiny_ov) == "f16"
    assert kv_value_bytes("CPU", {}, tiny_ov) == 2
    assert kv_value_bytes("CPU", {"KV_CACHE_PRECISION": "u8"}, tiny_ov) == 1  # a setting wins
    assert export_kv_precision(tmp_path) is None  # no language model IR
    assert kv_value_bytes("CPU", {}, tmp_path) == 1
    assert kv_value_bytes("CPU", {"KV_CACHE_PRECISION": "no-such-type"}) == 2


def test_openvino_describes_eight_photos_together_unless_told(tmp_path: Path, tiny_ov: Path) -> None:
    """Unset, vlm_batch_size is the engine's own: 8 on OpenVINO (bench/vlm.py), 4 on transformers."""
    assert OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(tiny_ov))).batch_size == 8
    told = _settings(tmp_path, vlm_model=str(tiny_ov), vlm_batch_size=4)
    assert OpenVINOAnalyser(told).batch_size == 4
    assert backends.vlm_batch_size(_settings(tmp_path), "transformers") == 4
    (tmp_path / "library").mkdir(exist_ok=True)
    (tmp_path / "library" / "config.toml").write_text("vlm_batch_size = 2\n")
    assert OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(tiny_ov))).batch_size == 2


def test_index_sends_the_openvino_engine_its_own_batch(
    tmp_path: Path, tiny_ov: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "photos"
    for i in range(9):
        make_photo(src / f"p{i}.jpg", size=(160, 120), color=(20 * i, 90, 200 - 20 * i), seed=i)
    seen: list[int] = []
    real = OpenVINOAnalyser._generate

    def counting(self: OpenVINOAnalyser, images: list[Image.Image]) -> list[str]:
        seen.append(len(images))
        return real(self, images)

    monkeypatch.setattr(OpenVINOAnalyser, "_generate", counting)
    settings = _settings(tmp_path, vlm_backend="auto", vlm_model=str(tiny_ov), vlm_max_new_tokens=16)
    with Catalog(settings.catalog_path) as cat:
        cat.add_root(src.resolve())
        (vlm,) = index_library(cat, settings).analyses
    assert (vlm.producer, vlm.todo, vlm.errors) == ("openvino", 9, 0)
    assert seen == [8, 1]  # vlm_batch_size unset: the engine's 8, not the setting's default of 4


def test_a_continuous_pipeline_that_cannot_answer_gives_way_to_one_photo_at_a_time(
    tmp_path: Path, tiny_ov: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Built is not enough: the pipeline must answer the load's warm-up photo, else the single-photo one
    runs (as when continuous batching cannot be built at all)."""
    real = OpenVINOAnalyser._warm_up

    def refuse_batches(self: OpenVINOAnalyser, pipe: Any, engine: str) -> None:
        if engine == "continuous":
            raise RuntimeError("images are not supported in continuous batching")
        real(self, pipe, engine)

    monkeypatch.setattr(OpenVINOAnalyser, "_warm_up", refuse_batches)
    analyser = OpenVINOAnalyser(_settings(tmp_path, vlm_model=str(tiny_ov)))
    with caplog.at_level(logging.WARNING):
        answers = analyser.generate_raw(_images()[:2])
    assert analyser.engine == "single"
    assert len(answers) == 2 and all(a.strip() for a in answers)
    assert "continuous batching is not available" in caplog.text
