"""The speech stage: transcribe the sound of every visible video not transcribed by this model version yet.

Transcripts are stored as analyses of the video's hash (producer "speech": language and timed segments) and
searched as moments of the video. A video with no sound track is skipped, one with no speech gets an empty
transcript; one whose sound cannot be decoded is an error row and the run goes on. A model that cannot load
stops only this stage, with its hint.
"""

from __future__ import annotations

import logging
import time

from smartalbum.catalog import Catalog
from smartalbum.config import Settings
from smartalbum.errors import ModelError, SmartAlbumError
from smartalbum.pipeline.analyse import AnalyseStats
from smartalbum.pipeline.progress import CancelToken, Progress
from smartalbum.speech.audio import decode_audio
from smartalbum.speech.base import Transcriber
from smartalbum.vision.base import AnalysisResult
from smartalbum.vision.description import SPEECH_PRODUCER

log = logging.getLogger(__name__)


def transcribe_videos(
    catalog: Catalog,
    settings: Settings,
    transcriber: Transcriber,
    *,
    redo: bool = False,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> AnalyseStats:
    progress = progress or Progress()
    cancel = cancel or CancelToken()
    stats = AnalyseStats(SPEECH_PRODUCER, transcriber.version)
    todo = catalog.videos_to_transcribe(transcriber.version, redo=redo, max_s=settings.transcribe_max_s)
    stats.todo = len(todo)
    if not todo:  # no bar for a library without videos
        return stats
    progress.begin(SPEECH_PRODUCER, len(todo))
    run_id = catalog.start_run(f"analyse:{SPEECH_PRODUCER}")
    started = time.monotonic()
    status = "failed"
    try:
        for video_hash, path in todo:
            if cancel.cancelled:
                stats.cancelled = True
                break
            try:
                samples = decode_audio(path, max_seconds=settings.transcribe_max_s)
                transcript = transcriber.transcribe(samples, settings.speech_language)
                result = AnalysisResult(video_hash, "ok", data=transcript.as_dict())
                stats.ok += 1
            except ModelError:
                raise
            except Exception as exc:  # sound that cannot be decoded: this video's problem only
                why = exc.message if isinstance(exc, SmartAlbumError) else f"{type(exc).__name__}: {exc}"
                result = AnalysisResult(video_hash, "error", error=f"sound track: {why}"[:300])
                stats.errors += 1
            catalog.record_analyses(SPEECH_PRODUCER, transcriber.version, [result])
            progress.advance(1, errors=int(result.status == "error"))
        status = "cancelled" if stats.cancelled else "done"
    except ModelError as exc:
        stats.model_error, stats.model_hint = exc.message, exc.hint
        status = "model_error"
        log.info("%s: %s", SPEECH_PRODUCER, exc)
    except KeyboardInterrupt:
        status = "cancelled"
        raise
    finally:
        stats.clock(started)
        catalog.finish_run(run_id, status, stats.as_dict())
    return stats
