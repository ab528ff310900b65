"""`fullstory-export` by job (argument parsing, reporting, job running), the client's error tree
in a module of its own, and every name importable from where users import it today."""

from __future__ import annotations

import importlib

from fullstory_emulator.client import cli as export_cli
from fullstory_emulator.client import core, errors


def test_each_job_is_a_module_of_its_own():
    for job, names in {
        "args": ("build_parser", "parse_args", "parse_duration", "parse_time", "rfc3339"),
        "report": ("Reporter", "JsonReporter", "HumanReporter", "make_reporter"),
        "jobs": ("run", "plan", "start_job", "finish_job", "classify", "list_segments"),
        "codes": ("EXIT_CODES", "Failure"),
    }.items():
        module = importlib.import_module(f"fullstory_emulator.client.cli.{job}")
        for name in names:
            assert getattr(export_cli, name) is getattr(module, name), (job, name)


def test_the_error_tree_is_drawn_and_importable_from_core():
    tree = errors.__doc__ or ""
    for name in ("FullStoryError", "Unauthorized", "NotFound", "RateLimited", "ExportFailed",
                 "DownloadError", "DownloadExpired"):  # fmt: skip
        assert getattr(core, name) is getattr(errors, name)
        assert f"── {name}" in tree or tree.lstrip().find(f"    {name}") >= 0
        assert issubclass(getattr(errors, name), errors.FullStoryError)
    assert issubclass(errors.DownloadExpired, errors.DownloadError)


def test_a_pacing_note_says_why(capsys):
    reporter = export_cli.HumanReporter()
    with reporter:
        reporter.emit(
            "pacing",
            endpoint="GET /operations/v1/{id}",
            seconds=29.5,
            reason="a 429 said its bucket is empty",
        )
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "pacing: waiting 30 s before GET /operations/v1/{id} to stay under the rate limit: "
        "a 429 said its bucket is empty"
    ) in err
