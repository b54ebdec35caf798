"""Schemathesis over the app's own OpenAPI document: whatever it generates, valid or not, the app answers
without a 5xx and with a body that matches the documented schema. Bounded and derandomised for CI.

One pytest test per operation. (Schemathesis' lazy `from_fixture` loader does not run under pytest 9, so each
test draws its cases from the operation's Hypothesis strategies itself.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from smartalbum.api.app import create_app
from smartalbum.config import Settings
from smartalbum.library import Library
from smartalbum.speech.audio import AUDIO_TYPES
from tests.web_fixtures import TOKEN, build_library

AUTH = {"Authorization": f"Bearer {TOKEN}"}
# a voice question's body is the recording itself: generated bodies are sent as raw bytes
for _kind in AUDIO_TYPES:
    schemathesis.serializer.alias(_kind, "application/octet-stream")
# Starting indexing could scan a generated folder such as "/": jobs are tested in test_api.py.
SKIPPED = {("POST", "/api/jobs")}


def _operations() -> list[tuple[str, str]]:
    # The document does not depend on the library's content: read it from an app over an unopened library.
    spec = create_app(Library(Settings(library_dir=Path("/nonexistent/smartalbum"))), token=TOKEN).openapi()
    ops = [(method.upper(), path) for path, item in spec["paths"].items() for method in item]
    return [op for op in ops if op not in SKIPPED]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    lib = build_library(tmp_path_factory.mktemp("fuzz"))
    # load the embedding model once up front: a cold import can take longer than the client's 10 s timeout
    lib.library.search("warm up")
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(lib.library, token=TOKEN), headers=AUTH)
    lib.library.close()


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda v: str(v))
def test_api_fuzz(api_schema: Any, method: str, path: str) -> None:
    operation = api_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )

    @given(case=cases)
    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=AUTH, checks=[not_a_server_error, response_schema_conformance])

    check()
