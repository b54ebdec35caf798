"""The `smartalbum` command: parsing and printing only; the work happens in `Library`, as for the web app."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from smartalbum import __version__
from smartalbum.config import Settings, load_settings
from smartalbum.errors import InputError, SmartAlbumError
from smartalbum.library import MAX_QUERY_CHARS, Library
from smartalbum.pipeline.progress import Progress as StageProgress
from smartalbum.search.results import SearchFilters, SearchResults, clock
from smartalbum.vision.description import SPEECH_PRODUCER

app = typer.Typer(
    help="smartalbum: a private photo library that understands its photos.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

LibraryOpt = Annotated[
    Path | None, typer.Option("--library", "-L", help="library data directory [default: XDG data home]")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


class _State:
    library: Path | None = None


def _settings(**overrides: Any) -> Settings:
    return load_settings(_State.library, **overrides)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


@app.callback()
def main(
    library: LibraryOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log diagnostics to stderr")] = False,
    version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False,
) -> None:
    if version:
        console.print(f"smartalbum {__version__}")
        raise typer.Exit()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    _State.library = library


@app.command()
def add(
    folder: Annotated[Path, typer.Argument(help="a folder of photos to index")], json_out: JsonOpt = False
) -> None:
    """Register a folder (a root) to index."""
    settings = _settings()
    with Library(settings) as lib:
        root = lib.add_root(folder.expanduser().absolute())
    if json_out:
        _print_json({"id": root["id"], "path": root["path"], "library": str(settings.library_dir)})
    else:
        console.print(f"added [bold]{root['path']}[/]; next: [bold]smartalbum index[/]")


@app.command()
def remove(folder: Annotated[Path, typer.Argument(help="a registered folder")]) -> None:
    """Stop indexing a folder (its photos leave the library; the folder itself is not touched)."""
    with Library(_settings()) as lib:
        lib.remove_root(folder)
    console.print(f"removed {folder}")


@app.command()
def roots(json_out: JsonOpt = False) -> None:
    """List registered folders."""
    with Library(_settings()) as lib:
        rows = lib.roots()
    if json_out:
        _print_json(rows)
        return
    table = Table("id", "folder", "files", "errors", "added")
    for r in rows:
        table.add_row(str(r["id"]), r["path"], str(r["files"]), str(r["errors"]), r["added_at"])
    console.print(table)


def rate_text(per_s: float) -> str:
    """A stage's speed as people read it: photos a second when fast, an hour when slow (the vision stage)."""
    if per_s <= 0:
        return ""
    return f"{per_s:.1f}/s" if per_s >= 1 else f"{per_s * 3600:,.0f}/h"


class _RateColumn(ProgressColumn):
    """The stage's own rate (pipeline Progress.rate: the vision stage times it after the model has loaded)."""

    def render(self, task: Task) -> Text:
        return Text(rate_text(task.fields.get("rate") or 0.0), style="cyan")


class _TimeLeftColumn(TimeRemainingColumn):
    """The stage's own time left (pipeline Progress.eta_s, the web's figure too: the vision stage times it
    after the model has loaded) instead of rich's estimate; elapsed time once finished."""

    def render(self, task: Task) -> Text:
        if task.finished or task.total is None or "eta" not in task.fields:
            return super().render(task)
        eta = task.fields["eta"]
        if eta is None:
            return Text("-:--:--", style="progress.remaining")
        minutes, seconds = divmod(int(eta), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


class _Bars:
    """Rich progress bars fed by the pipeline's Progress callbacks; shown from the first one on."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.tasks: dict[str, TaskID] = {}

    def stop(self) -> None:
        if self.bars.live.is_started:
            self.bars.stop()

    def __call__(self, p: StageProgress) -> None:
        if not self.bars.live.is_started:
            self.bars.start()  # not before: a run refused at once (no folders) prints only its error
        task = self.tasks.get(p.stage)
        if task is None:
            task = self.tasks[p.stage] = self.bars.add_task(
                p.stage, total=p.total or None, detail="", eta=None, rate=0.0
            )
        self.bars.update(
            task,
            completed=p.done,
            total=p.total or None,
            description=f"{p.stage} ({p.errors} errors)" if p.errors else p.stage,
            detail=p.detail,
            eta=p.eta_s,
            rate=p.rate,
        )


@app.command()
def index(
    workers: Annotated[int | None, typer.Option(help="decode processes [default: one per CPU core]")] = None,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="read again files that failed before, even if unchanged")
    ] = False,
    reanalyze: Annotated[
        bool, typer.Option("--reanalyze", help="run the vision model again on photos it already read")
    ] = False,
    vlm: Annotated[bool, typer.Option("--vlm/--no-vlm", help="describe photos with the vision model")] = True,
    ocr: Annotated[bool | None, typer.Option("--ocr/--no-ocr", help="read text in photos with OCR")] = None,
    faces: Annotated[
        bool | None, typer.Option("--faces/--no-faces", help="find and group faces (people)")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="vision backend: transformers | openvino | auto | openai")
    ] = None,
    model: Annotated[str | None, typer.Option(help="vision model: Hugging Face id or local path")] = None,
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue",
            help="send the vision stage to `smartalbum worker`s through this Redis (redis://host:6379/0)",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Scan every registered folder, read new photos, describe them; resumes where a stopped run left off."""
    settings = _settings(workers=workers, vlm_backend=backend, vlm_model=model, queue_url=queue)
    with Library(settings) as lib:
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            _TimeLeftColumn(elapsed_when_finished=True),
            TextColumn("[dim]{task.fields[detail]}"),
        )
        bars = _Bars(Progress(*columns, console=err_console, disable=json_out, transient=False))
        try:
            report = lib.index(
                progress=StageProgress(on_update=bars),
                retry_errors=retry_errors,
                reanalyze=reanalyze,
                vlm=vlm,
                ocr=ocr,
                faces=faces,
            )
        except KeyboardInterrupt:
            bars.stop()
            err_console.print("[yellow]stopped[/]: what was read is saved; run `smartalbum index` to resume")
            raise typer.Exit(130) from None
        finally:
            bars.stop()
    if json_out:
        _print_json(report.as_dict())
        return
    stats = report.ingest
    rate = stats.ok / stats.elapsed_s if stats.elapsed_s else 0.0
    console.print(
        f"{stats.seen} files seen: {stats.new} new, {stats.changed} changed, {stats.unchanged} unchanged, "
        f"{stats.gone} gone; {stats.ok} read ({rate:.1f}/s), {stats.errors} errors in {stats.elapsed_s:.1f}s"
    )
    f = report.faces
    if f and f.model_error:
        err_console.print(f"[red]faces: model unavailable[/]: {f.model_error}", soft_wrap=True)
        if f.model_hint:
            err_console.print(f"hint: {f.model_hint}", soft_wrap=True, highlight=False)
    elif f and f.purged:
        console.print(f"face recognition is off: {f.purged} stored faces and their people deleted")
    elif f and f.todo:
        console.print(
            f"faces: {f.faces} found in {f.scanned} photos "
            f"({f.errors} failed, {f.photos_per_s:.1f} photos/s); "
            f"{f.joined} joined known people, {f.new_people} new groups (see `smartalbum people`)"
        )
    for a in report.analyses:
        if a.model_error:
            err_console.print(f"[red]{a.producer}: model unavailable[/]: {a.model_error}", soft_wrap=True)
            if a.model_hint:
                err_console.print(f"hint: {a.model_hint}", soft_wrap=True, highlight=False)
            err_console.print("the rest of the run completed; the next `smartalbum index` retries them")
        elif a.todo:
            console.print(
                f"{a.producer}: {a.ok} read, {a.partial} partly parsed, {a.unparsed} unparsed, "
                f"{a.errors} failed "
                f"of {a.todo} ({a.photos_per_s:.2f} photos/s)"
            )
        queued = getattr(a, "queue", None)
        if queued and a.todo:
            console.print(
                f"  through {queued['broker']}: {_queue_workers(queued['workers'])}", highlight=False
            )
    if stats.errors or stats.unreadable_dirs or any(a.errors for a in report.analyses) or (f and f.errors):
        console.print("see [bold]smartalbum status --errors[/] for what failed")


@app.command()
def status(
    errors: Annotated[bool, typer.Option("--errors", help="list each failed file with its reason")] = False,
    queue: Annotated[
        str | None, typer.Option("--queue", help="the analysis queue's Redis [default: setting queue_url]")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show counts: photos, files, errors by kind, last run; with a queue, its workers and progress."""
    with Library(_settings(queue_url=queue)) as lib:
        counts = lib.stats()
        failed = lib.errors() if errors else []
        queued = None if errors else lib.queue_status()
    last = counts["last_run"]
    if json_out:
        _print_json({**counts, **({"errors": failed} if errors else {"queue": queued})})
        return
    if errors:
        if not failed:
            console.print("no errors")
        for e in failed:
            console.print(
                f"[red]{e['kind']}[/] {e['subject']}: {e['message']}", highlight=False, soft_wrap=True
            )
        return
    table = Table(show_header=False, box=None)
    for key in ("roots", "photos", "videos", "photos_gone", "files", "files_error", "files_gone"):
        table.add_row(key.replace("_", " "), str(counts[key]))
    for producer, by_status in counts["analyses"].items():
        table.add_row(f"analysed by {producer}", ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    people = counts["people"]
    if people["photos_scanned"]:
        table.add_row(
            "faces",
            f"{people['faces']} in {people['photos_scanned']} photos scanned; {people['people']} people, "
            f"{people['people_named']} named",
        )
    for kind, n in counts["errors_by_kind"].items():
        table.add_row(f"  error {kind}", str(n))
    if last:
        table.add_row("last run", f"{last['kind']} {last['status']} at {last['started_at']}")
    if queued:
        for key, value in _queue_rows(queued):
            table.add_row(key, escape(value))
    console.print(table)


def _queue_workers(workers: dict[str, dict[str, Any]]) -> str:
    if not workers:
        return "no results from any worker"
    return ", ".join(
        f"{name} {w['photos']} photos, {w['photos_per_hour']:.0f}/h" for name, w in workers.items()
    )


def _queue_rows(q: dict[str, Any]) -> list[tuple[str, str]]:
    if not q.get("reachable"):
        return [("queue", f"{q['broker']} unreachable: {q.get('error')}")]
    alive = q["workers"]
    rows = [
        ("queue", f"{q['broker']} {q['queue']} ({q['producer']}): {q['waiting']} waiting"),
        ("workers alive", f"{len(alive)}" + (f": {', '.join(alive)}" if alive else "")),
    ]
    if q["other_workers"]:
        rows.append(("workers of other models", ", ".join(q["other_workers"])))
    run = q.get("running_index")
    if run:
        rows.append(
            (
                "index running",
                f"{run['queued'] + run['to_send']} queued, {run['running']} running, {run['done']} done, "
                f"{run['failed']} failed of {run['total']}",
            )
        )
        rows.append(("  per worker", _queue_workers(run["workers"])))
    last = q.get("last_run")
    if last:
        rows.append(("last queued run", f"{last['status']} at {last['started_at']}"))
        rows.append(("  per worker", _queue_workers(last["workers"])))
    return rows


@app.command()
def worker(
    broker: Annotated[
        str | None, typer.Option("--broker", help="Redis URL, e.g. redis://host:6379/0 [default: queue_url]")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, help="tasks at once [default: 1]")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="vision backend: transformers | openvino | auto | openai")
    ] = None,
    model: Annotated[str | None, typer.Option(help="vision model: Hugging Face id or local path")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="node name [default: smartalbum-PID@host]")
    ] = None,
) -> None:
    """Take analysis tasks from the queue and describe photos with the vision model; never opens a catalog.

    Runs until stopped (Ctrl-C or SIGTERM finish the running photos; the rest goes back to the queue)."""
    from smartalbum.queue.worker import run_worker

    settings = _settings(
        vlm_backend=backend, vlm_model=model, queue_url=broker, queue_concurrency=concurrency
    )
    level = "INFO" if logging.getLogger().isEnabledFor(logging.INFO) else "WARNING"

    def echo(line: str) -> None:
        console.print(line, highlight=False, soft_wrap=True)
        sys.stdout.flush()

    code = run_worker(settings, broker, concurrency=concurrency, nodename=name, loglevel=level, echo=echo)
    raise typer.Exit(code)


@app.command()
def show(
    photo: Annotated[str, typer.Argument(help="photo id, content hash (8+ chars) or file path")],
    json_out: JsonOpt = False,
) -> None:
    """Print everything known about one photo: files, time, place, camera, and what the models saw."""
    with Library(_settings()) as lib:
        data = lib.photo(photo)
    if json_out:
        _print_json(data)
        return
    table = Table(show_header=False, box=None)
    for key, value in data.items():
        if key == "files":
            for f in value:
                table.add_row("file", f"{f['path']} [{f['status']}]")
        elif key not in ("analyses", "frames") and value is not None:
            table.add_row(key, str(value))
    console.print(table)
    for a in data["analyses"]:
        console.print(
            f"\n[bold]{a['producer']}[/] {a['status']} · {a['producer_version']} · {a['created_at']}"
        )
        if a["producer"] == SPEECH_PRODUCER:  # a video's transcript: timed lines
            for seg in a["data"].get("segments") or []:
                console.print(f"  {clock(seg['start'])}  {seg['text']}", highlight=False)
            continue
        console.print(_analysis_table(a["data"]))
    for frame in data.get("frames") or []:  # a video's keyframes, each described like a photo
        console.print(f"\n[bold]frame @ {clock(frame['t'])}[/]")
        for a in frame["analyses"]:
            console.print(f"[dim]{a['producer']} {a['status']}[/]")
            console.print(_analysis_table(a["data"]))


def _analysis_table(data: dict[str, Any]) -> Table:
    table = Table(show_header=False, box=None)

    def both(value: Any) -> str:
        if isinstance(value, dict):
            return " / ".join(str(value[k]) for k in ("zh", "en") if value.get(k))
        return str(value)

    def things(items: list[dict[str, Any]]) -> str:
        return ", ".join(f"{both(t.get('name'))} ×{t.get('count', 1)}" for t in items)

    rows = [
        ("描述 zh", (data.get("caption") or {}).get("zh")),
        ("description en", (data.get("caption") or {}).get("en")),
        ("objects", things(data.get("objects") or [])),
        ("animals", things(data.get("animals") or [])),
        ("tags", " / ".join(", ".join(v) for v in (data.get("tags") or {}).values() if v)),
        ("scene", both(data.get("scene") or "")),
        ("text", " | ".join(data.get("text") or [])),
        (
            "people",
            (lambda p: f"{p.get('count', 0)} {both(p.get('description') or '')}".strip())(
                data.get("people") or {}
            ),
        ),
        ("time of day", data.get("time_of_day")),
        ("season", data.get("season")),
        ("weather", data.get("weather")),
    ]
    for label, value in rows:
        if value:
            table.add_row(label, str(value))
    return table


def _parse_day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{flag} {value!r} is not a date", "write it as YYYY-MM-DD, e.g. 2024-07-12"
        ) from None


def _marked(snippet: str) -> str:
    """'a [cat] here' -> Rich markup with the matched words in bold; everything else escaped."""
    parts = re.split(r"\[([^\]]*)\]", snippet)
    return "".join(f"[bold yellow]{escape(p)}[/]" if i % 2 else escape(p) for i, p in enumerate(parts))


def _emit(results: SearchResults, json_out: bool) -> None:
    if json_out:
        _print_json(results.as_dict())
    else:
        _print_results(results)


def _print_results(results: SearchResults) -> None:
    zh = results.language == "zh"
    if results.understood:
        console.print(
            ("理解为：" if zh else "understood as: ") + "; ".join(results.understood), highlight=False
        )
    for note in results.notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    if not results.hits:
        console.print("没有找到合适的照片" if zh else "no matching photos")
        return
    for rank, hit in enumerate(results.hits, start=results.offset + 1):
        caption = hit.caption.get(results.language) or hit.caption.get("en") or hit.caption.get("zh") or ""
        at = ""
        if hit.media == "video":  # where to play from: the best matching moment
            at = f" @ {clock(hit.moments[0]['t'])}" if hit.moments else ""
            at += f" [dim](video {clock(hit.duration_s or 0)})[/]"
        console.print(
            f"[bold]{rank:>3}.[/] [cyan]{hit.score:.2f}[/] #{hit.photo_id} {hit.path}{at}", highlight=False
        )
        if caption:
            console.print(f"     {caption}", highlight=False)
        if hit.why:
            console.print(f"     [dim]{' · '.join(hit.why)}[/]", highlight=False)
        for name, snippet in list(hit.highlights.items())[:2]:
            console.print(f"     [dim]{name}:[/] {_marked(snippet)}", highlight=False)
        if hit.similar:  # near-duplicates folded into this one (--all-similar lists them)
            ids = ", ".join(f"#{i}" for i in hit.similar.photo_ids)
            more = f"另有 {hit.similar.count} 张相似" if zh else f"+{hit.similar.count} similar"
            console.print(f"     [dim]{more}: {ids}[/]", highlight=False)
    shown = results.offset + len(results.hits)
    if shown < results.total:
        about = "" if results.total_exact else "about "
        console.print(f"[dim]{shown} of {about}{results.total:,}; --offset {shown} for more[/]")


def _ignored(kinds: list[str] | None) -> tuple[str, ...]:
    from smartalbum.search.query import STEP_KINDS

    bad = [k for k in kinds or () if k not in STEP_KINDS]
    if bad:
        raise InputError(
            f"--ignore {bad[0]!r} is not a part of a reading", f"choose from: {', '.join(STEP_KINDS)}"
        )
    return tuple(dict.fromkeys(kinds or ()))


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="what you remember, in Chinese or English")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="results per page")] = 20,
    offset: Annotated[int, typer.Option(min=0, max=100_000, help="skip this many results")] = 0,
    after: Annotated[str | None, typer.Option(help="taken on or after YYYY-MM-DD")] = None,
    before: Annotated[str | None, typer.Option(help="taken on or before YYYY-MM-DD")] = None,
    place: Annotated[str | None, typer.Option(help="city, region or country, e.g. 青岛 or Paris")] = None,
    sort: Annotated[str, typer.Option(help="relevance | date")] = "relevance",
    min_score: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="hide results scoring lower")
    ] = None,
    batch: Annotated[
        Path | None, typer.Option(help="answer every line of this file; prints JSON lines")
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(help="take back part of how the question was read: time, place, people, trip, ..."),
    ] = None,
    verify: Annotated[
        bool | None,
        typer.Option(
            "--verify/--no-verify",
            help="let the vision model check what the question describes on the best results "
            "[default: for filtered questions on a GPU or vision server]",
        ),
    ] = None,
    audio: Annotated[
        Path | None,
        typer.Option(help="ask by voice: a recording of the question (WAV, MP3, Ogg, WebM, M4A; up to 60 s)"),
    ] = None,
    audio_language: Annotated[
        str | None,
        typer.Option(help="the language spoken in --audio, e.g. zh or en [default: detected]"),
    ] = None,
    all_similar: Annotated[
        bool, typer.Option("--all-similar", help="list every near-duplicate, not one photo per group")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Find photos by what you remember: 找出所有有猫的日落照片, "dogs on the beach last summer"."""
    if sort not in ("relevance", "date"):
        raise InputError(f"--sort must be relevance or date, not {sort!r}")
    if sum(given is not None for given in (query, batch, audio)) != 1:
        raise InputError("give a query, --audio FILE or --batch FILE (one of them)")
    filters = SearchFilters(
        _parse_day(after, "--after"),
        _parse_day(before, "--before"),
        place,
        "date" if sort == "date" else "relevance",
        min_score,
        verify,
        _ignored(ignore),
        all_similar=all_similar,
    )
    with Library(_settings()) as lib:
        if batch is not None:
            if not batch.is_file():
                raise InputError(f"{batch} is not a file", "one query per line")
            with open(batch, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        result = lib.search(line.strip(), filters, limit, offset)
                        sys.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False, default=str) + "\n")
            return
        heard: dict[str, Any] | None = None
        if audio is not None:
            transcript = lib.hear_question(audio.expanduser(), language=audio_language)
            query = transcript.text[:MAX_QUERY_CHARS].strip()
            heard = {"text": query, "language": transcript.language, "seconds": round(transcript.duration, 2)}
            if not json_out:
                label = "听到：" if transcript.language == "zh" else "heard: "
                console.print(f"[dim]{label}[/]{escape(query)}", highlight=False)
        assert query is not None
        results = lib.search(query, filters, limit, offset)
    if json_out and heard is not None:
        _print_json({"heard": heard, **results.as_dict()})
        return
    _emit(results, json_out)


@app.command()
def similar(
    photo: Annotated[str, typer.Argument(help="photo id, content hash (8+ chars) or file path")],
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Photos that look like this one (by what the model saw in them)."""
    with Library(_settings()) as lib:
        results = lib.similar(photo, limit)
    _emit(results, json_out)


@app.command()
def feedback(
    query: Annotated[str | None, typer.Argument(help="the query the photo was (not) right for")] = None,
    photo: Annotated[str | None, typer.Argument(help="photo id, content hash or path")] = None,
    good: Annotated[bool, typer.Option("--good", help="this photo is right for the query")] = False,
    bad: Annotated[bool, typer.Option("--bad", help="this photo is wrong for the query")] = False,
    list_: Annotated[bool, typer.Option("--list", help="list feedback in force")] = False,
    undo: Annotated[int | None, typer.Option("--undo", help="undo feedback with this id")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Tell search that a photo is right (--good) or wrong (--bad) for a query; --list; --undo ID."""
    with Library(_settings()) as lib:
        if list_:
            rows: Any = lib.list_feedback()
        elif undo is not None:
            rows = lib.undo_feedback(undo)
        else:
            if query is None or photo is None or good == bad:
                raise InputError(
                    "give a query, a photo and one of --good / --bad", "or use --list / --undo ID"
                )
            rows = lib.add_feedback(query, photo, "good" if good else "bad")
    if json_out:
        _print_json(rows)
    elif list_:
        table = Table("id", "verdict", "photo", "query", "when")
        for r in rows:
            table.add_row(str(r["id"]), r["verdict"], str(r["photo_id"]), r["query"], r["created_at"])
        console.print(table)
    elif undo is not None:
        console.print(f"undid feedback {undo}")
    else:
        console.print(
            f"noted: photo #{rows['photo_id']} is {rows['verdict']} for {rows['query']!r} (id {rows['id']})"
        )


@app.command("import-analyses")
def import_analyses_cmd(
    file: Annotated[
        Path, typer.Argument(help="JSON Lines: one {path|hash, description|caption, ...} a line")
    ],
    json_out: JsonOpt = False,
) -> None:
    """Load analyses produced elsewhere; every line is validated and reported; safe to run twice."""
    with Library(_settings()) as lib:
        report = lib.import_analyses(file)
    if json_out:
        _print_json(report.as_dict())
        return
    for e in report.errors:
        err_console.print(f"[red]line {e['line']}:[/] {e['error']}", highlight=False, soft_wrap=True)
    console.print(
        f"{report.lines} lines: {report.imported} imported, {report.unchanged} unchanged, "
        f"{len(report.errors)} rejected"
    )
    if report.errors:
        raise typer.Exit(1)


@app.command()
def doctor(
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="rebuild the search indexes from the catalog")
    ] = False,
    fix: Annotated[
        bool, typer.Option("--fix", help="queue photos with missing thumbnails for re-reading")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Check the library: catalog integrity, thumbnails, search indexes; --rebuild, --fix."""
    with Library(_settings()) as lib:
        report = lib.doctor(rebuild=rebuild, fix=fix)
    if json_out:
        _print_json(report)
        return
    for key, value in report.items():
        console.print(f"{key}: {value}", highlight=False, soft_wrap=True)
    if report["missing_thumbnails"] and not fix:
        console.print(
            "run [bold]smartalbum doctor --fix[/] then [bold]smartalbum index[/] to remake thumbnails"
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: 8765]", min=1, max=65535)] = None,
    token: Annotated[
        str | None, typer.Option(help="access token, needed beyond localhost [env: SMARTALBUM_TOKEN]")
    ] = None,
) -> None:
    """Start the web app and JSON API (http://127.0.0.1:8765/ by default); indexing runs from the page."""
    from smartalbum.api.server import serve as run_server

    run_server(_settings(), host=host, port=port, token=token)


def _span(row: dict[str, Any]) -> str:
    start, end = row["start_local"][:10], row["end_local"][:10]
    return start if start == end else f"{start} – {end}"


@app.command()
def trips(json_out: JsonOpt = False) -> None:
    """Trips: nights away from home (home is where most days are photographed, per period), newest first."""
    with Library(_settings()) as lib:
        rows = lib.trips()
    if json_out:
        _print_json(rows)
        return
    if not rows:
        console.print("no trips yet: trips need photos with times and places (GPS) away from home")
    for t in rows:
        console.print(
            escape(f"{t['id']:>5}  {_span(t)}  {t['title_zh']} / {t['title_en']}  {t['photos']} photos"),
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def events(
    trip: Annotated[int | None, typer.Option("--trip", help="only the events of this trip")] = None,
    limit: Annotated[int, typer.Option(help="how many", min=1, max=100_000)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Events: photos grouped by time and place (a gap of hours or a jump starts one), newest first."""
    with Library(_settings()) as lib:
        rows = lib.events(trip_id=trip, limit=limit)
    if json_out:
        _print_json(rows)
        return
    for e in rows:
        where = f" (trip {e['trip_id']})" if e["trip_id"] else ""
        console.print(
            escape(f"{e['id']:>6}  {_span(e)}  {e['title_zh']}  {e['photos']} photos{where}"),
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def duplicates(
    min_size: Annotated[int, typer.Option("--min-size", min=2, help="only groups of at least this many")] = 2,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many groups")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Groups of near-identical photos (bursts, edited copies, screenshots of the same thing), largest first.
    Nothing is deleted: search shows one photo per group."""
    with Library(_settings()) as lib:
        groups = lib.duplicates(min_size=min_size, limit=limit)
    if json_out:
        _print_json(groups)
        return
    if not groups:
        console.print("no near-duplicate groups (run `smartalbum index` to find them)")
    for g in groups:
        console.print(f"[bold]group {g['id']}[/]: {g['size']} photos", highlight=False)
        for p in g["photos"]:
            console.print(
                escape(f"  #{p['photo_id']:<6} {(p['taken_at'] or '')[:19]:19}  {p['path']}"),
                highlight=False,
                soft_wrap=True,
            )


people_app = typer.Typer(
    help="People: groups of faces found in your photos; name, mark yourself, merge, split, hide, forget.",
    no_args_is_help=False,
)
app.add_typer(people_app, name="people")


def _person_line(p: dict[str, Any]) -> str:
    name = ", ".join(p["names"]) if p["names"] else "(unnamed)"
    flags = "".join([" [me]" if p["is_me"] else "", " [hidden]" if p["hidden"] else ""])
    sample = (p.get("cover") or {}).get("path") or "-"
    return f"{p['id']:>5}  {name}{flags}  {p['faces']} faces in {p['photos']} photos  e.g. {sample}"


def _print_person(p: dict[str, Any], json_out: bool) -> None:
    if json_out:
        _print_json(p)
    else:
        console.print(escape(_person_line(p)), highlight=False, soft_wrap=True)


@people_app.callback(invoke_without_command=True)
def people_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="also hidden people and one-face groups")] = False,
    min_faces: Annotated[int, typer.Option(help="leave out groups with fewer faces", min=1)] = 2,
    json_out: JsonOpt = False,
) -> None:
    """List people, yourself first, then the largest groups (id, names, faces, a sample photo)."""
    if ctx.invoked_subcommand is not None:
        return
    with Library(_settings()) as lib:
        everyone = lib.people(include_hidden=all_, min_faces=1)
    shown = everyone if all_ else [p for p in everyone if p["faces"] >= min_faces or p["names"]]
    if json_out:
        _print_json(shown)
        return
    if not everyone:
        console.print("no faces found yet: run [bold]smartalbum index[/] (face_recognition must be on)")
        return
    for p in shown:
        console.print(escape(_person_line(p)), highlight=False, soft_wrap=True)
    left = len(everyone) - len(shown)
    if left:
        console.print(f"{left} smaller groups not shown (--all or --min-faces 1)")
    console.print("name one with [bold]smartalbum people name ID 名字 [Alias...][/]")


@people_app.command("show")
def people_show(
    person: Annotated[int, typer.Argument(help="person id")],
    faces: Annotated[int, typer.Option(help="list up to this many faces", min=0, max=10_000)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """One person and their faces (face ids for `people split` and `people move`)."""
    with Library(_settings()) as lib:
        p = lib.person(person, faces=faces)
    if json_out:
        _print_json(p)
        return
    console.print(escape(_person_line(p)), highlight=False, soft_wrap=True)
    for f in p.get("face_list", []):
        console.print(f"  face {f['id']}: photo {f['photo_id']} ({f['assigned_by'] or 'auto'})")


@people_app.command("name")
def people_name(
    person: Annotated[int, typer.Argument(help="person id")],
    names: Annotated[list[str], typer.Argument(help="names in any language; the first is shown")],
    add: Annotated[bool, typer.Option("--add", help="keep the names the person already has")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Name a person, with aliases: `people name 12 妈妈 老妈 Mum`."""
    with Library(_settings()) as lib:
        _print_person(lib.name_person(person, names, add=add), json_out)


@people_app.command("me")
def people_me(
    person: Annotated[int | None, typer.Argument(help="person id of yourself")] = None,
    none: Annotated[bool, typer.Option("--none", help="nobody is marked as you")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Mark which person is you, so 我 / me / my in a question mean that person."""
    if (person is None) == (not none):
        raise InputError("give a person id, or --none", "see `smartalbum people`")
    with Library(_settings()) as lib:
        p = lib.set_me(None if none else person)
    if p is None:
        if json_out:
            _print_json(None)
        else:
            console.print("nobody is marked as you")
        return
    _print_person(p, json_out)


@people_app.command("birthday")
def people_birthday(
    person: Annotated[int, typer.Argument(help="person id")],
    birthday: Annotated[str | None, typer.Argument(help="YYYY-MM-DD, or MM-DD")] = None,
    none: Annotated[bool, typer.Option("--none", help="forget the birthday")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Set a person's birthday, so "妈妈的生日" / "Mum's birthday" finds the photos of that day."""
    if (birthday is None) == (not none):
        raise InputError("give a birthday, or --none", "e.g. `smartalbum people birthday 12 1962-05-03`")
    with Library(_settings()) as lib:
        _print_person(lib.set_birthday(person, None if none else birthday), json_out)


@people_app.command("merge")
def people_merge(
    target: Annotated[int, typer.Argument(help="the person to keep")],
    others: Annotated[list[int], typer.Argument(help="people merged into it")],
    json_out: JsonOpt = False,
) -> None:
    """Merge people into the first one: `people merge 7 12 15` keeps 7 with all faces and names."""
    with Library(_settings()) as lib:
        _print_person(lib.merge_people(others, target), json_out)


@people_app.command("split")
def people_split(
    faces: Annotated[list[int], typer.Argument(help="face ids (see `people show ID`)")],
    json_out: JsonOpt = False,
) -> None:
    """Take faces out of their group into a new person of their own."""
    with Library(_settings()) as lib:
        _print_person(lib.move_faces(faces, None), json_out)


@people_app.command("move")
def people_move(
    faces: Annotated[list[int], typer.Argument(help="face ids (see `people show ID`)")],
    to: Annotated[int, typer.Option("--to", help="the person these faces belong to")],
    json_out: JsonOpt = False,
) -> None:
    """Give faces to another person (a correction no later run undoes)."""
    with Library(_settings()) as lib:
        _print_person(lib.move_faces(faces, to), json_out)


@people_app.command("hide")
def people_hide(
    person: Annotated[int, typer.Argument(help="person id")],
    undo: Annotated[bool, typer.Option("--undo", help="show the person again")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Never show this group (strangers in the background); new faces of them join it quietly."""
    with Library(_settings()) as lib:
        _print_person(lib.hide_person(person, not undo), json_out)


@people_app.command("forget")
def people_forget(
    person: Annotated[int, typer.Argument(help="person id")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Delete a person: names, faces and face vectors. Their photos are not scanned again."""
    if not yes and not typer.confirm(f"delete person {person} with their faces?", default=False):
        raise typer.Exit(1)
    with Library(_settings()) as lib:
        n = lib.forget_person(person)
    if json_out:
        _print_json({"person": person, "faces_deleted": n})
    else:
        console.print(f"person {person} forgotten: {n} faces deleted")


models_app = typer.Typer(
    help="Models: what is configured, where it is, and fetching it ahead of time.",
    invoke_without_command=True,
)
app.add_typer(models_app, name="models")


@models_app.callback()
def models_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the models in use: which stage uses each, whether it is downloaded or bundled, where, how big."""
    if ctx.invoked_subcommand is not None:
        return
    from smartalbum.models import configured_models, human_size, model_dir, source_for

    settings = _settings()
    rows = [m.as_dict() for m in configured_models(settings)]
    source = source_for(settings.model_source)
    if json_out:
        _print_json(
            {
                "source": source.name,
                "endpoint": source.endpoint,
                "model_dir": str(model_dir(settings)),
                "models": rows,
            }
        )
        return
    table = Table("name", "model (where)", "state", "size", "used by")
    for m in rows:
        size = human_size(m["size"]) if m["size"] is not None else ""
        where = f"\n[dim]{escape(m['location'])}[/]" if m["location"] else ""
        table.add_row(m["name"], escape(m["model"]) + where, m["state"], size, m["used_by"])
    console.print(table)
    console.print(f"downloads come from {source.name} ({source.endpoint}) into {model_dir(settings)}")


class _PullBar:
    """models.PullProgress drawn as one Rich bar per model: bytes, rate and time left."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, repo_id: str, files: int, total: int) -> None:
        self.task = self.progress.add_task(f"{repo_id} ({files} files)", total=total or None)

    def file(self, path: str, size: int | None, done: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, description=path)

    def advance(self, n: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)

    def note(self, text: str) -> None:
        self.progress.console.print(escape(text), highlight=False)


@models_app.command("pull")
def models_pull(
    name: Annotated[
        str, typer.Argument(help="vision, speech, embedding, all, or a model id (Qwen/Qwen3-VL-2B-Instruct)")
    ] = "all",
    json_out: JsonOpt = False,
) -> None:
    """Fetch models ahead of time from model_source (resumable, checksummed)."""
    from smartalbum.models import human_size, pull_models

    settings = _settings()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, disable=json_out) as bars:
        results = pull_models(settings, name, _PullBar(bars))
    if json_out:
        _print_json([r.as_dict() for r in results])
        return
    if not results:
        console.print("nothing to download: every configured model is bundled, local or already downloaded")
    for r in results:
        fetched = human_size(r.downloaded_bytes)
        console.print(f"{r.repo_id}: {human_size(r.size)} in {r.path} ({fetched} fetched from {r.source})")


def run() -> None:
    try:
        app()
    except SmartAlbumError as exc:
        err_console.print(f"[red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"hint: {exc.hint}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
