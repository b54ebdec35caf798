"""Voice questions over HTTP: POST a recording, get back what was said (the page then searches for it).

The body is the recording itself (what the browser's MediaRecorder made), with its media type as Content-Type;
the size cap is LimitBody's (voice_max_bytes for this path), the length cap voice_max_seconds. Decoding and
the model run in the thread pool, never on the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smartalbum.api.routes import ERRORS
from smartalbum.errors import InputError
from smartalbum.library import MAX_QUERY_CHARS, Library
from smartalbum.speech.audio import AUDIO_TYPES, media_type

TRANSCRIBE_PATH = "/api/transcribe"
_BINARY = {"schema": {"type": "string", "format": "binary"}}


class SegmentOut(BaseModel):
    start: float = Field(description="seconds from the start of the recording")
    end: float
    text: str


class TranscriptOut(BaseModel):
    """What was heard: the question to search for, its language, timed segments, the recording's length."""

    text: str = Field(max_length=MAX_QUERY_CHARS)
    language: str = Field(description='the language spoken or asked for, e.g. "zh" or "en"')
    segments: list[SegmentOut]
    seconds: float = Field(description="the recording's length in seconds")


def build_speech_router(library: Library) -> APIRouter:
    api = APIRouter(prefix="/api", responses=ERRORS)
    responses: dict[int | str, dict[str, Any]] = {
        413: {**ERRORS[413], "description": "the recording is over the size or the length cap"},
        415: {**ERRORS[400], "description": "the body is not one of the audio types taken"},
        422: {**ERRORS[422], "description": "no speech was heard (or a parameter is out of range)"},
    }

    @api.post(
        "/transcribe",
        tags=["search"],
        responses=responses,
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "the recording itself (at most voice_max_bytes and voice_max_seconds)",
                "content": {kind: _BINARY for kind in AUDIO_TYPES},
            }
        },
    )
    async def transcribe(
        request: Request,
        language: Annotated[
            str | None,
            Query(
                max_length=10,
                pattern=r"^[A-Za-z]*$",
                description='"zh", "en", ...; leave out (or "auto") to detect it',
            ),
        ] = None,
    ) -> TranscriptOut:
        """A spoken question as text (Chinese, English, or another language Whisper knows)."""
        media_type(request.headers.get("content-type"))
        body = await request.body()
        if not body:
            raise InputError("the request has no recording", "send the audio as the request body")
        transcript = await run_in_threadpool(lambda: library.hear_question(body, language=language))
        return TranscriptOut(
            text=transcript.text[:MAX_QUERY_CHARS].strip(),
            language=transcript.language,
            segments=[SegmentOut(start=s.start, end=s.end, text=s.text) for s in transcript.segments],
            seconds=round(transcript.duration, 3),
        )

    return api
