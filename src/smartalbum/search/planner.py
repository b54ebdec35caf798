"""An optional planner: a language model turns a question the rules left words of into a JSON plan.

Configured by `planner_base_url` (any OpenAI-compatible server: vLLM with Qwen3 in thinking mode, or the local
Qwen3-VL served as a text model) and `planner_model`. The rule-based parser stays the default and the
fallback: the planner is asked only when the rules left search words, its answer must validate against
`Plan` (unknown keys, wrong types, overlong values are refused), and it can only add what the rules did not
find (a date, a place, people, a trip, exclusions, weekends); the words it says to search by meaning replace
the remainder only then. A bad plan, a timeout or a dead server never breaks search: the answer carries a
note and the rules' reading. Plans are cached per question in memory.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections import OrderedDict
from datetime import date
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smartalbum.config import Settings

log = logging.getLogger(__name__)
CACHE_SIZE = 256


class TripPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nth: int | None = Field(default=None, ge=-20, le=20)  # -1 the latest trip, -2 the one before, 0 the first
    day: int | None = Field(default=None, ge=-1, le=60)  # 1-based day of the trip, -1 the last day


class Plan(BaseModel):
    """What the planner may say about a question; every field optional."""

    model_config = ConfigDict(extra="forbid")
    search: str = Field(default="", max_length=500)  # what to look for by meaning, in the question's language
    date_from: date | None = None
    date_to: date | None = None
    place: str | None = Field(default=None, max_length=100)  # a city, region or country
    people: list[str] = Field(default_factory=list, max_length=10)  # names (or "me") who must be in it
    only_people: bool = False  # nobody else in the photo
    without_people: list[str] = Field(default_factory=list, max_length=10)
    trip: TripPlan | None = None
    exclude: list[str] = Field(default_factory=list, max_length=10)  # things that must not be in the photo
    weekend: bool = False
    sort: Literal["relevance", "date"] = "relevance"


_SYSTEM = """You turn a photo-search question into a JSON plan for a personal photo library. Today is {today}.
Known people: {people}. Answer with one JSON object only, no prose, with these optional keys:
"search" (the visual content to look for, in the question's language), "date_from" and "date_to"
(YYYY-MM-DD), "place" (a city, region or country), "people" (names from the known people, or "me"),
"only_people" (true when nobody else may be in the photo), "without_people", "trip" ({{"nth": -1 for the
latest trip, -2 for the one before, 0 for the first; "day": 1-based day of that trip, -1 the last day}}),
"exclude" (things that must not be in the photo), "weekend" (true for Saturdays and Sundays), "sort"
("relevance" or "date"). Leave out what the question does not say."""


def _names(value: list[str]) -> list[str]:
    return [v.strip() for v in value if isinstance(v, str) and v.strip()][:10]


class Planner:
    def __init__(self, settings: Settings) -> None:
        self.base_url = (settings.planner_base_url or "").rstrip("/")
        self.model = settings.planner_model
        self.timeout_s = settings.planner_timeout_s
        self.api_key = os.environ.get(settings.openai_api_key_env, "")
        self._cache: OrderedDict[tuple[str, str], Plan] = OrderedDict()
        self._lock = threading.Lock()

    def plan(self, question: str, *, today: date, people: list[str]) -> Plan:
        """The plan for `question`; raises PlanError with a reason a person can read."""
        key = (question, today.isoformat())
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        system = _SYSTEM.format(today=today.isoformat(), people=", ".join(people[:200]) or "none")
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
            "temperature": 0,
            "max_tokens": 1024,
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = httpx.post(
                f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout_s
            )
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"] or ""
        except httpx.TimeoutException as exc:
            raise PlanError(f"the planner did not answer within {self.timeout_s:g} s") from exc
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise PlanError(f"the planner could not be asked: {exc}") from exc
        plan = parse_plan(content)
        with self._lock:
            self._cache[key] = plan
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return plan


class PlanError(Exception):
    pass


def parse_plan(content: str) -> Plan:
    """The plan in a model's answer: thinking (<think>...</think>) and code fences are skipped; the first
    JSON object must validate against `Plan`."""
    text = re.sub(r"<think>.*?</think>", "", content, flags=re.DOTALL)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise PlanError("the planner's answer holds no JSON object")
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise PlanError(f"the planner's answer is not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise PlanError("the planner's answer is not a JSON object")
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanError(f"the planner's plan was refused: {where}: {first['msg']}") from exc
    plan.people, plan.without_people, plan.exclude = (
        _names(plan.people),
        _names(plan.without_people),
        _names(plan.exclude),
    )
    if plan.date_from and plan.date_to and plan.date_from > plan.date_to:
        plan.date_from, plan.date_to = plan.date_to, plan.date_from
    return plan
