"""The `smartalbum` command: parsing and printing only; the work happens in the pipeline and the catalog."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from smartalbum import __version__
from smartalbum.catalog import Catalog
from smartalbum.config import Settings, load_settings
from smartalbum.errors import InputError, SmartAlbumError
from smartalbum.pipeline.progress import Progress as StageProgress

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


def _catalog(settings: Settings) -> Catalog:
    return Catalog(settings.catalog_path)


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
    path = folder.expanduser().resolve()
    if not path.is_dir():
        raise InputError(f"{folder} is not a folder", "give the path of an existing folder of photos")
    settings = _settings()
    with _catalog(settings) as cat:
        root_id = cat.add_root(path)
    if json_out:
        _print_json({"id": root_id, "path": str(path), "library": str(settings.library_dir)})
    else:
        console.print(f"added [bold]{path}[/] to {settings.library_dir}; run [bold]smartalbum index[/] next")


@app.command()
def remove(folder: Annotated[Path, typer.Argument(help="a registered folder")]) -> None:
    """Stop indexing a folder (its photos leave the library; the folder itself is not touched)."""
    with _catalog(_settings()) as cat:
        cat.remove_root(folder.expanduser().resolve())
    console.print(f"removed {folder}")


@app.command()
def roots(json_out: JsonOpt = False) -> None:
    """List registered folders."""
    with _catalog(_settings()) as cat:
        rows = cat.roots()
    if json_out:
        _print_json(rows)
        return
    table = Table("id", "folder", "files", "errors", "added")
    for r in rows:
        table.add_row(str(r["id"]), r["path"], str(r["files"]), str(r["errors"]), r["added_at"])
    console.print(table)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.1f}/s" if task.speed else "", style="cyan")


class _Bars:
    """Rich progress bars fed by the pipeline's Progress callbacks."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, p: StageProgress) -> None:
        task = self.tasks.get(p.stage)
        if task is None:
            task = self.tasks[p.stage] = self.bars.add_task(p.stage, total=p.total or None)
        self.bars.update(
            task,
            completed=p.done,
            total=p.total or None,
            description=f"{p.stage} ({p.errors} errors)" if p.errors else p.stage,
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
    backend: Annotated[str | None, typer.Option(help="vision backend: transformers | openai")] = None,
    model: Annotated[str | None, typer.Option(help="vision model: Hugging Face id or local path")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Scan every registered folder, read new photos, describe them; resumes where a stopped run left off."""
    from smartalbum.pipeline.run import index_library

    settings = _settings(workers=workers, vlm_backend=backend, vlm_model=model)
    with _catalog(settings) as cat:
        if not cat.roots():
            raise InputError("no folders registered", "run `smartalbum add <folder>` first")
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeRemainingColumn(elapsed_when_finished=True),
        )
        with Progress(*columns, console=err_console, disable=json_out, transient=False) as bars:
            progress = StageProgress(on_update=_Bars(bars))
            try:
                report = index_library(
                    cat,
                    settings,
                    progress=progress,
                    retry_errors=retry_errors,
                    reanalyze=reanalyze,
                    vlm=vlm,
                    ocr=ocr,
                )
            except KeyboardInterrupt:
                bars.stop()
                err_console.print(
                    "[yellow]stopped[/]: what was read is saved; run `smartalbum index` to resume"
                )
                raise typer.Exit(130) from None
    if json_out:
        _print_json(report.as_dict())
        return
    stats = report.ingest
    rate = stats.ok / stats.elapsed_s if stats.elapsed_s else 0.0
    console.print(
        f"{stats.seen} files seen: {stats.new} new, {stats.changed} changed, {stats.unchanged} unchanged, "
        f"{stats.gone} gone; {stats.ok} read ({rate:.1f}/s), {stats.errors} errors in {stats.elapsed_s:.1f}s"
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
    if stats.errors or stats.unreadable_dirs or any(a.errors for a in report.analyses):
        console.print("see [bold]smartalbum status --errors[/] for what failed")


@app.command()
def status(
    errors: Annotated[bool, typer.Option("--errors", help="list each failed file with its reason")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Show counts: photos, files, errors by kind, last run."""
    with _catalog(_settings()) as cat:
        counts = cat.counts()
        last = cat.last_run()
        failed = cat.errors() if errors else []
    if json_out:
        _print_json({**counts, "last_run": last, **({"errors": failed} if errors else {})})
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
    for key in ("roots", "photos", "photos_gone", "files", "files_error", "files_gone"):
        table.add_row(key.replace("_", " "), str(counts[key]))
    for kind, n in counts["errors_by_kind"].items():
        table.add_row(f"  error {kind}", str(n))
    if last:
        table.add_row("last run", f"{last['kind']} {last['status']} at {last['started_at']}")
    console.print(table)


@app.command()
def show(
    photo: Annotated[str, typer.Argument(help="photo id, content hash (8+ chars) or file path")],
    json_out: JsonOpt = False,
) -> None:
    """Print everything known about one photo."""
    with _catalog(_settings()) as cat:
        data = cat.photo(photo)
    if json_out:
        _print_json(data)
        return
    table = Table(show_header=False, box=None)
    for key, value in data.items():
        if key == "files":
            for f in value:
                table.add_row("file", f"{f['path']} [{f['status']}]")
        elif value is not None:
            table.add_row(key, str(value))
    console.print(table)


@app.command()
def serve() -> None:
    """Start the web app (arrives with the web issue; this placeholder only says so)."""
    settings = _settings()
    console.print(
        f"the web app is not built yet; the library at {settings.library_dir} is ready for "
        "`smartalbum status` and `smartalbum show`"
    )


def run() -> None:
    try:
        app()
    except SmartAlbumError as exc:
        err_console.print(f"[red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"hint: {exc.hint}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
