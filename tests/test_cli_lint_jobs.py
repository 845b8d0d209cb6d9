"""`qrules lint` on two cores: a forked worker checks part of the files, and the output
is byte for byte what one process prints; a worker that fails costs only time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qrules import cli
from qrules.cli import lint_jobs

REPO = Path(__file__).resolve().parent.parent
BIG = "# padding so that the files are worth a worker\n" * 100  # 4,800 bytes


@pytest.fixture
def files(tmp_path):
    paths = []
    for n in range(6):
        path = tmp_path / f"f{n}.qrule"
        path.write_text(BIG)
        paths.append(str(path))
    return paths


def where(file):
    return (Path(file).name, os.getpid())


def test_a_worker_checks_part_of_the_files_and_results_keep_file_order(files):
    results = lint_jobs.check_files(files, where, parallel=True)
    assert [name for name, _ in results] == [Path(f).name for f in files]
    pids = {pid for _, pid in results}
    assert os.getpid() in pids and len(pids) == 2  # this process and one worker
    assert results[0][1] == os.getpid()  # the first file is checked before the fork
    assert lint_jobs.check_files(files, where, parallel=False) == [
        (Path(f).name, os.getpid()) for f in files]


def test_small_inputs_are_not_worth_a_worker(tmp_path):
    small = [str(tmp_path / f"s{n}.qrule") for n in range(4)]
    for path in small:
        Path(path).write_text("ruleset s\n")
    assert {pid for _, pid in lint_jobs.check_files(small, where, parallel=True)} == {
        os.getpid()}


def test_exceptions_come_back_in_place_from_either_process(files):
    def check(file):
        if Path(file).name in ("f2.qrule", "f5.qrule"):
            raise OSError(5, f"cannot read {Path(file).name}")
        return where(file)

    results = lint_jobs.check_files(files, check, parallel=True)
    for file, result in zip(files, results):
        if Path(file).name in ("f2.qrule", "f5.qrule"):
            assert isinstance(result, OSError) and result.strerror.endswith(Path(file).name)
        else:
            assert result[0] == Path(file).name


def test_a_result_the_worker_cannot_send_is_checked_again_here(files):
    parent = os.getpid()

    def check(file):
        if os.getpid() != parent:
            return lambda: file  # cannot be pickled: the worker fails as a whole
        return where(file)

    results = lint_jobs.check_files(files, check, parallel=True)
    assert results == [(Path(f).name, parent) for f in files]


PROGRAM = """\
import sys
from qrules.cli import lint, main
lint.spare_core = lambda: True  # fork whatever the machine's load
sys.argv = ["qrules", *sys.argv[1:]]
sys.exit(main())
"""


@pytest.mark.parametrize("fmt", cli.FORMATS)
def test_the_program_prints_what_one_process_prints(tmp_path, capsys, monkeypatch, fmt):
    """The built-in rulesets, the diagnostics fixtures (findings with notes, includes,
    syntax errors) and an unreadable file, linted by the forking program and by
    ``main`` in this process."""
    monkeypatch.chdir(REPO)
    argv = ["lint", "rulesets", "tests/fixtures/diagnostics", "--format", fmt,
            "--fail-on", "info"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    forked = subprocess.run([sys.executable, "-c", PROGRAM, *argv], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert (forked.returncode, forked.stdout, forked.stderr) == (status, out, err)
    assert status == 1 and out


def test_an_unreadable_file_is_reported_as_by_one_process(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for n in range(6):
        (tmp_path / f"f{n}.qrule").write_text(BIG)
    os.mkfifo(tmp_path / "f3.qrule.fifo")
    os.replace(tmp_path / "f3.qrule.fifo", tmp_path / "f4.qrule")  # not a regular file
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    forked = subprocess.run([sys.executable, "-c", PROGRAM, "lint", "."], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    status = cli.main(["lint", "."])
    out, err = capsys.readouterr()
    assert (forked.returncode, forked.stdout, forked.stderr) == (status, out, err)
    assert status == 1 and "QR109" in out and "f4.qrule" in out
