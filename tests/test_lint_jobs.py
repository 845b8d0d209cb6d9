"""`qrules lint --jobs N` checks files in N processes and reports exactly what one
process reports: the same diagnostics in the same order, whatever the children do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qrules import cli
from qrules.checking import check_path
from qrules.cli import lint, lint_jobs

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "diagnostics"
FILES = lint.collect_files([str(REPO / "rulesets"), str(FIXTURES)])


def _picture(results) -> list:
    return [(r.message,) if isinstance(r, lint_jobs.Failed)
            else ([(d, d.notes, d.span) for d in r.diagnostics], r.sources) for r in results]


def test_processes_find_what_one_process_finds():
    assert len(FILES) >= 20
    serial = lint_jobs.check_all(FILES, check_path, 1)
    assert sum(len(r.diagnostics) for r in serial) > 100  # the fixtures have findings
    for jobs in (2, 3):
        assert _picture(lint_jobs.check_all(FILES, check_path, jobs)) == _picture(serial)


def test_an_unreadable_file_is_reported_in_its_place():
    def check(file):
        if file == FILES[3]:
            raise PermissionError(13, "Permission denied")
        return check_path(file)

    results = lint_jobs.check_all(FILES, check, 2)
    assert results[3] == lint_jobs.Failed("Permission denied")
    assert _picture(results[:3]) == _picture(lint_jobs.check_all(FILES[:3], check_path, 1))


def test_a_failing_child_costs_only_time():
    """Children that crash, or die without answering, lose nothing: the parent checks
    the files they took."""
    parent = os.getpid()

    def crash(file):
        if os.getpid() != parent:
            raise RuntimeError("a bug in a child")
        return check_path(file)

    def vanish(file):
        if os.getpid() != parent:
            os._exit(3)
        return check_path(file)

    serial = _picture(lint_jobs.check_all(FILES, check_path, 1))
    for check in (crash, vanish):
        assert _picture(lint_jobs.check_all(FILES, check, 2)) == serial


def test_one_file_or_one_job_never_forks(monkeypatch):
    def no_fork():
        raise AssertionError("forked")

    monkeypatch.setattr(os, "fork", no_fork)
    assert len(lint_jobs.check_all(FILES[:1], check_path, 4)) == 1
    assert len(lint_jobs.check_all(FILES[:4], check_path, 1)) == 4
    # A Python caller of main gets one process unless it asks for more.
    assert cli.main(["lint", str(REPO / "rulesets"), "--format", "json"]) == 0


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif"])
def test_the_command_prints_the_same_with_any_number_of_jobs(fmt):
    def run(*jobs):
        return subprocess.run([sys.executable, "-m", "qrules", "lint", str(REPO / "rulesets"),
                               str(FIXTURES), "--format", fmt, *jobs], cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    one, default, three = run("--jobs", "1"), run(), run("--jobs", "3")
    assert one.returncode == 1 and one.stdout  # the fixtures have errors
    for other in (default, three):
        assert (other.returncode, other.stdout, other.stderr) == (
            one.returncode, one.stdout, one.stderr)


def test_jobs_must_be_positive(capsys):
    assert cli.main(["lint", str(REPO / "rulesets"), "--jobs", "0"]) == 2
    assert "--jobs 0: must be at least 1" in capsys.readouterr().err


def test_more_files_than_the_queue_holds_go_in_batches(monkeypatch):
    """Past _BATCHES files the queue's records name batches of files; every file is
    still checked, by one process, and reported in its place."""
    from qrules.checking import CheckResult

    monkeypatch.setattr(lint_jobs, "_BATCHES", 4)
    assert len(FILES) > 3 * 4  # more than one file per batch
    here = []

    def check(file):
        here.append(file)  # the parent's list; a child appends to its own copy
        time.sleep(0.01)  # long enough for the child to take batches too
        return CheckResult((), {file: "checked"})

    results = lint_jobs.check_all(FILES, check, 2)
    assert [r.sources for r in results] == [{file: "checked"} for file in FILES]
    assert 0 < len(here) < len(FILES) and len(set(here)) == len(here)  # the child did some


def test_a_queue_of_many_files_fits_in_the_pipe():
    """20,000 files (more records than a pipe holds) neither block the queue's writer
    nor lose a file."""
    import signal

    from qrules.checking import CheckResult

    names = [f"missing-{number}.qrule" for number in range(20_000)]

    def stuck(signum, frame):
        raise AssertionError("the queue's writer blocked")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(20)
    try:
        results = lint_jobs.check_all(names, lambda file: CheckResult((), {file: ""}), 2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [list(r.sources) for r in results] == [[name] for name in names]
