"""The microphone button in a real browser: Chromium's fake audio capture plays a WAV made by espeak-ng as the
microphone, the page records it (MediaRecorder, WebM/Opus), the server transcribes it with the bundled Whisper
base, and the search shows the photo the question describes. Also: silence, a browser that cannot record, and
the Chinese labels. Screenshots go to .test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smartalbum.api.app import create_app
from smartalbum.speech.audio import decode_audio
from smartalbum.speech.base import SAMPLE_RATE, Transcriber
from tests.speech_fixtures import build_kite_library, kite_wav, speech_dir, whisper, write_wav
from tests.web_fixtures import TOKEN, BuiltLibrary, live_server

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=60_000)  # a transcription on a busy 2-core machine takes seconds

from tests.test_web_browser import ARGS, CHROMIUM, SHOTS, card_ids  # noqa: E402

__all__ = ["kite_wav", "speech_dir", "whisper"]  # the shared fixtures, used here by name

FAKE_MIC = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory, whisper: Transcriber) -> Iterator[BuiltLibrary]:
    built = build_kite_library(tmp_path_factory.mktemp("web-voice"))
    built.library.search("warm up")
    yield built
    built.library.close()


@pytest.fixture(scope="module")
def server(lib: BuiltLibrary) -> Iterator[str]:
    with live_server(create_app(lib.library, token=TOKEN)) as url:
        yield url


@pytest.fixture(scope="module")
def microphone_files(speech_dir: Path, kite_wav: Path) -> dict[str, Path]:
    """What the fake microphone plays: the question (16 kHz WAV, then silence), or silence alone."""
    question = np.concatenate([decode_audio(kite_wav), np.zeros(2 * SAMPLE_RATE, np.float32)])
    return {
        "question": write_wav(speech_dir / "mic-question.wav", question),
        "silence": write_wav(speech_dir / "mic-silence.wav", np.zeros(6 * SAMPLE_RATE, np.float32)),
    }


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: `make test` installs it (apt chromium)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        yield p


def open_page(playwright: Any, server: str, wav: Path, locale: str = "en-US") -> Any:
    """A fresh Chromium whose microphone plays `wav` once (%noloop), on the library's page."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*ARGS, *FAKE_MIC, f"--use-file-for-fake-audio-capture={wav}%noloop"]
    )
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 800})
    context.grant_permissions(["microphone"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # the refused recordings answer 4xx on purpose: those are the page's to explain, not script errors
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "status of 4" not in m.text else None,
    )
    page.goto(f"{server}/?token={TOKEN}")
    expect(page).to_have_url(f"{server}/")
    page.js_errors = errors
    page.browser_ = browser
    return page


def record(page: Any, seconds: int) -> None:
    """Click the microphone, let it listen for `seconds`, click again to stop and send."""
    mic = page.locator("#mic")
    mic.click()
    expect(mic).to_have_class(re.compile(r"\brecording\b"))
    expect(mic).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#voice-status")).to_contain_text(f"Listening… {seconds} s")
    page.screenshot(path=SHOTS / "voice-recording.png")
    mic.click()


def test_a_spoken_question_is_searched(
    playwright: Any, server: str, lib: BuiltLibrary, microphone_files: dict[str, Path]
) -> None:
    page = open_page(playwright, server, microphone_files["question"])
    try:
        expect(page.locator("#mic")).to_have_attribute("aria-label", "Ask by voice")
        record(page, 5)
        expect(page.locator("#mic")).not_to_have_class(re.compile(r"\brecording\b"))
        expect(page.locator("#voice-status")).to_contain_text("Heard:")
        heard = page.locator("#q").input_value().lower()
        assert "red kite" in heard and "beach" in heard, heard
        expect(page.locator("#status")).not_to_have_text(re.compile("Searching|^$"))
        expect(page.locator(".card").first).to_be_visible()
        assert card_ids(page)[0] == lib.ids["kite"]
        assert "q=" in page.url and "kite" in page.url.lower()  # the address bar keeps the spoken question
        page.screenshot(path=SHOTS / "voice-results.png")
        assert page.js_errors == [], page.js_errors
    finally:
        page.browser_.close()


def test_silence_says_no_speech_and_chinese_labels(
    playwright: Any, server: str, microphone_files: dict[str, Path]
) -> None:
    page = open_page(playwright, server, microphone_files["silence"], locale="zh-CN")
    try:
        mic = page.locator("#mic")
        expect(mic).to_have_attribute("aria-label", "语音提问")
        mic.click()
        expect(mic).to_have_attribute("aria-label", "结束并搜索")
        expect(page.locator("#voice-status")).to_contain_text("正在听… 2 秒")
        mic.click()
        status = page.locator("#voice-status")
        expect(status).to_contain_text("没有听到说话声")
        expect(status).to_have_class(re.compile(r"\berror\b"))
        assert page.locator("#q").input_value() == ""  # nothing was searched
        page.screenshot(path=SHOTS / "voice-no-speech-zh.png")
        assert page.js_errors == [], page.js_errors
    finally:
        page.browser_.close()


def test_a_browser_that_cannot_record_says_so(
    playwright: Any, server: str, microphone_files: dict[str, Path]
) -> None:
    page = open_page(playwright, server, microphone_files["silence"])
    try:
        page.add_init_script("Object.defineProperty(navigator, 'mediaDevices', {value: undefined})")
        page.reload()
        page.click("#mic")
        expect(page.locator("#voice-status")).to_contain_text("need a microphone")
        expect(page.locator("#mic")).not_to_have_class(re.compile(r"\brecording\b"))
        assert page.js_errors == [], page.js_errors
    finally:
        page.browser_.close()
