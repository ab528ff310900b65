"""Reporting: every step of a run is an event (a name and JSON-able fields), shown as rich
progress on stderr, as JSON lines on stdout (--json), or not at all (--quiet); a listener (the
demo) sees each one too. Failures and errors always reach stderr."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

Listener = Callable[[str, dict[str, Any]], Any]


class Reporter:
    """Where events go: an optional listener (the demo narrates from it), plus this mode's view.

    Failures and errors always reach stderr, whatever the mode.
    """

    def __init__(self, listener: Listener | None = None) -> None:
        self.listener = listener

    def emit(self, event: str, **fields: Any) -> None:
        if self.listener is not None:
            self.listener(event, dict(fields))
        self.show(event, fields)

    def show(self, event: str, fields: dict[str, Any]) -> None:
        if event in ("failed", "error"):
            print(f"fullstory-export: {_problem(fields)}", file=sys.stderr, flush=True)

    def transfer(self, bundle: str, size: int, total: int | None = None) -> None:
        """Bytes written so far by a download, of `total` when the server said (Content-Length;
        too chatty to be an event)."""

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _problem(fields: dict[str, Any]) -> str:
    where = f"[{fields['bundle']}] " if fields.get("bundle") else ""
    if "errorDetails" in fields:
        return (
            f"{where}export {fields.get('operationId')} ended in {fields.get('state')}: "
            f"{fields.get('errorDetails') or 'no errorDetails given'}"
        )
    return where + str(fields.get("message"))


class JsonReporter(Reporter):
    """One JSON object per line on stdout, for scripts and log shippers; on `stream` instead
    where stdout already carries the command's data (`segments --json`)."""

    def __init__(self, listener: Listener | None = None, stream: TextIO | None = None) -> None:
        super().__init__(listener)
        self.stream = stream

    def show(self, event: str, fields: dict[str, Any]) -> None:
        line = json.dumps({"event": event, **fields}, default=str)
        print(line, file=self.stream or sys.stdout, flush=True)
        super().show(event, fields)


class HumanReporter(Reporter):
    """Rich progress bars and one-line notes on stderr; stdout stays clean for pipes."""

    def __init__(self, listener: Listener | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        super().__init__(listener)
        self.console = Console(stderr=True, highlight=False)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.tasks: dict[str, Any] = {}
        self.overall: Any = None
        self.chunked = False

    def __enter__(self) -> HumanReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _note(self, text: str) -> None:
        self.progress.console.print(text, soft_wrap=True)  # whole lines stay greppable

    def show(self, event: str, fields: dict[str, Any]) -> None:
        bundle = str(fields.get("bundle") or fields.get("segment") or "export")
        task = self.tasks.get(bundle)
        if event == "plan" and fields.get("bundles", 1) > 1:
            self.chunked = True
            self.overall = self.progress.add_task(
                f"[bold]{_esc(fields['segment'])}[/] bundles", total=fields["bundles"], status=""
            )
        elif event == "skipped":
            self._note(f"[dim]· {_esc(fields['file'])} is already complete; skipped[/]")
            self._advance()
        elif event == "created":
            self.tasks[bundle] = self.progress.add_task(
                _esc(bundle), total=100, status=f"created {_esc(fields['operationId'])}"
            )
        elif event == "progress" and task is not None:
            status = _esc(str(fields.get("step") or fields.get("state") or ""))
            self.progress.update(task, completed=fields.get("pct") or 0, status=status)
        elif event == "connecting":
            self._note(f"[dim]{_esc(connecting(fields))}[/]")
        elif event == "rate_limited":
            wait = fields.get("retryAfter")
            after = f"; Retry-After {wait:g} s" if wait is not None else ""
            where = _esc(f"{fields['method']} {fields['path']}")
            retry = f"; retrying{_attempt(fields)}" if fields.get("attempt") is not None else ""
            self._note(f"[yellow]429 rate limited on {where}{after}{_esc(retry)}[/]")
        elif event == "retrying":
            what = f"HTTP {fields['status']}" if fields.get("status") else "connection failed"
            detail = str(fields.get("message") or "")
            detail = detail.removesuffix(f" ({fields['method']} {fields['path']})")
            detail = f" ({detail})" if detail and not fields.get("status") else ""
            self._note(
                f"[yellow]{what} on {_esc(fields['path'])}{_esc(detail)}; retrying"
                f"{_esc(_attempt(fields))}[/]"
            )
        elif event == "completed" and task is not None:
            self.progress.update(task, completed=100, status="COMPLETED, downloading")
        elif event == "resuming":
            if task is None:
                self.tasks[bundle] = task = self.progress.add_task(
                    _esc(bundle), total=100, status=""
                )
            self._note(f"[cyan]resuming {_esc(fields['file'])} at {_size(fields['offset'])}[/]")
        elif event == "url_expired":
            self._note(
                f"[yellow]download URL expired ({_esc(fields.get('details') or 'ExpiredToken')}); "
                f"asking for a fresh one (renewal {fields['renewal']})[/]"
            )
        elif event == "downloaded":
            size = _size(fields["bytes"])
            if task is not None:
                self.progress.update(task, status=f"saved {size}")
                if self.chunked:
                    self.progress.remove_task(task)
            if fields.get("empty"):
                self._note(f"[yellow]∅ {_esc(fields['file'])} ({size}, no rows)[/]")
            else:
                self._note(f"[green]✓[/] {_esc(fields['file'])} ({size})")
            self._advance()
        elif event == "warning":
            self._note(f"[yellow]warning: {_esc(fields['message'])}[/]")
        elif event == "pacing" and fields["seconds"] >= 1:
            self._note(
                f"[dim]pacing: waiting {fields['seconds']:.0f} s before "
                f"{_esc(fields['endpoint'])} to stay under the rate limit"
                f"{_esc(': ' + fields['reason']) if fields.get('reason') else ''}[/]"
            )
        elif event in ("failed", "error"):
            if task is not None:
                self.progress.update(task, status="[red]failed[/]")
            self._advance()
            self._note(f"[red]✗ {_esc(_problem(fields))}[/]")
        elif event == "done" and self.chunked:
            empty = f" ({fields['empty']} empty)" if fields.get("empty") else ""
            self._note(
                f"{fields['downloaded']} downloaded{empty}, {fields['skipped']} skipped, "
                f"{fields['failed']} failed"
            )

    def _advance(self) -> None:
        if self.overall is not None:
            self.progress.advance(self.overall)

    def transfer(self, bundle: str, size: int, total: int | None = None) -> None:
        task = self.tasks.get(bundle)
        if task is None:
            return
        if total:  # a real bar: bytes of the file's length
            status = f"downloading {_size(size)} of {_size(total)}"
            self.progress.update(task, completed=size, total=total, status=status)
        else:
            self.progress.update(task, status=f"downloading {_size(size)}")


def connecting(fields: dict[str, Any]) -> str:
    """Where a command sends its requests, and why there: said first, as a run against the
    wrong host (production, when an emulator was meant) otherwise fails only after retries."""
    if fields.get("source") == "default":
        return (
            f"no --api-url or FULLSTORY_API_URL: using FullStory's production API {fields['url']}"
        )
    return f"connecting to {fields['url']} ({fields['source']})"


def _attempt(fields: dict[str, Any]) -> str:
    """`; waiting 2 s (attempt 2 of 6)`: where a retry stands, for a user watching backoff."""
    text = ""
    if fields.get("delay") is not None:
        text = f" in {fields['delay']:g} s"
    if fields.get("attempt") is not None:
        of = f" of {fields['attempts']}" if fields.get("attempts") else ""
        text += f" (attempt {fields['attempt']}{of} failed)"
    return text


def _esc(text: str) -> str:
    """Server text and paths shown literally, never read as rich markup."""
    from rich.markup import escape

    return escape(str(text))


def _size(n: int) -> str:
    size, unit = float(n), "B"
    for bigger in ("KB", "MB", "GB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"


def make_reporter(args: argparse.Namespace, listener: Listener | None) -> Reporter:
    if args.json:
        return JsonReporter(listener)
    if args.quiet:
        return Reporter(listener)
    return HumanReporter(listener)
