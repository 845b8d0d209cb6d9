"""``qrules lint``: check .qrule files and report diagnostics, without importing torch.

Finding is ``qrules.checking``'s job, formatting ``qrules.report``'s. Exit status:
0 nothing at or above ``--fail-on``, 1 findings at or above it, 2 usage or I/O error.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path
from typing import Iterable, NoReturn, Sequence, TextIO

from qrules.cli.common import EXIT_CLEAN, EXIT_FINDINGS, UsageError, version

FORMATS = ("text", "json", "github", "sarif")
SEVERITY_NAMES = ("error", "warning", "info")


def add(subparsers) -> None:
    lint = subparsers.add_parser(
        "lint", help="check .qrule files and report diagnostics",
        description="Check .qrule files (directories are searched for *.qrule) without "
                    "importing torch. Exit status: 0 clean, 1 findings at or above "
                    "--fail-on, 2 usage or I/O error.")
    lint.add_argument("paths", nargs="+", metavar="PATH",
                      help="a .qrule file (any extension is accepted) or a directory")
    lint.add_argument("--format", choices=FORMATS, default="text",
                      help="output format (default: text)")
    lint.add_argument("--fail-on", choices=SEVERITY_NAMES, default="error",
                      help="lowest severity that makes the exit status 1 (default: error)")
    lint.add_argument("--select", action="append", default=[], metavar="CODES",
                      help="report only these codes; comma-separated, prefixes allowed "
                           "(QR4 means every QR4xx)")
    lint.add_argument("--ignore", action="append", default=[], metavar="CODES",
                      help="never report these codes; comma-separated, prefixes allowed; "
                           "wins over --select")
    lint.add_argument("--include-root", action="append", default=[], metavar="DIR",
                      dest="include_roots",
                      help="a directory `include` may read from (repeatable)")
    lint.add_argument("--jobs", type=int, metavar="N",
                      help="check files in N processes (default: one per usable CPU when "
                           "run as the qrules command, else 1); the output is the same")
    lint.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from qrules import report
    from qrules.checking import check_path
    from qrules.cli.lint_jobs import Failed, check_all, usable_cpus
    from qrules.diagnostics import CODES, Severity

    select = _code_patterns(args.select, CODES, "--select")
    ignore = _code_patterns(args.ignore, CODES, "--ignore")
    for root in args.include_roots:
        if not Path(root).is_dir():
            raise UsageError(f"--include-root {root}: not a directory")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: must be at least 1")
    jobs = args.jobs or (usable_cpus() if _program else 1)
    files = collect_files(args.paths)

    roots = args.include_roots or None
    results = check_all(files, lambda file: check_path(file, include_roots=roots), jobs)
    found, sources = {}, {}
    for file, result in zip(files, results):
        if isinstance(result, Failed):
            raise UsageError(f"{file}: {result.message}")
        sources.update(result.sources)
        # dict keeps order and drops repeats: a file included by two linted files
        # would otherwise report its findings twice.
        found.update(dict.fromkeys(result.diagnostics))
    shown = [d for d in found if _wanted(d.code, select, ignore)]

    if args.format == "text":
        _write(sys.stdout, report.format_text(shown, sources))
        _write(sys.stderr, summary_line(shown, len(files)) + "\n")
    elif args.format == "json":
        _write(sys.stdout, report.format_json(shown, len(files)))
    elif args.format == "github":
        _write(sys.stdout, report.format_github(shown))
    else:
        _write(sys.stdout, report.format_sarif(shown, version()))

    threshold = Severity(args.fail_on).rank
    failing = any(d.severity.rank >= threshold for d in shown)
    return EXIT_FINDINGS if failing else EXIT_CLEAN


#: Set by start_program: this process is the ``qrules lint`` command, not a Python
#: caller of ``main`` (whose process lint must not fork by default).
_program = False


def start_program() -> None:
    """Start-up of the ``qrules lint`` command (a process of its own; not done for a
    Python caller of ``main``): import what ``run`` needs with the cyclic garbage
    collector off, then freeze those objects so no later collection walks them
    (collections during imports are a tenth of a lint run), and collect afterwards
    only every 100,000 new containers instead of every 700: the checks keep tens of
    thousands of objects alive per file and make few cycles, so the default cadence
    spent a twentieth of a run walking live objects, while memory stays bounded on
    a large tree of files. The parser's tables are loaded here too, to be frozen
    with the rest. lark is not imported: a clean parse does not need it."""
    global _program
    _program = True
    gc.disable()
    try:
        import qrules.checking  # noqa: F401
        import qrules.cli.lint_jobs  # noqa: F401
        import qrules.report  # noqa: F401
        from qrules.syntax.lalr_tables import tables

        tables()
    finally:
        gc.freeze()
        gc.set_threshold(100_000)
        gc.enable()


def end_program(status: int) -> NoReturn:
    """Exit the ``qrules lint`` process without tearing down every module and object
    one by one (a sixth of a lint run): the output is flushed, nothing else is kept
    open, and lint registers no exit handlers."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: the exit status still counts
            pass
    os._exit(status)


def collect_files(paths: Iterable[str]) -> list[str]:
    """The files to lint, in a fixed order: arguments in order, directories sorted.

    A named file is linted whatever its extension; a directory contributes its
    ``*.qrule`` files, recursively, skipping hidden directories (``.git``, ``.venv``).
    A path that does not exist, including a dangling symlink found in a directory,
    is a usage error: CI should not pass because a ruleset silently went missing.
    """
    files, seen, missing, empty = [], set(), [], []
    for arg in paths:
        candidates = _walk(Path(arg)) if os.path.isdir(arg) else [arg]
        if os.path.isdir(arg) and not candidates:
            empty.append(arg)
        for file in candidates:
            if not os.path.exists(file):
                missing.append(file)
                continue
            key = os.path.realpath(file)
            if key not in seen:
                seen.add(key)
                files.append(file)
    if missing:
        raise UsageError("\n".join(f"{m}: no such file or directory" for m in missing))
    for folder in empty:
        print(f"qrules lint: warning: no .qrule files in {folder}", file=sys.stderr)
    return files


def _walk(root: Path) -> list[str]:
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".qrule")]
    return found


def _code_patterns(values: list[str], codes: dict, flag: str) -> tuple[str, ...]:
    """'QR2,QR401' -> ('QR2', 'QR401'); a pattern matching no code is a usage error."""
    patterns = tuple(p.strip().upper() for value in values for p in value.split(",")
                     if p.strip())
    unknown = [p for p in patterns if not any(code.startswith(p) for code in codes)]
    if unknown:
        raise UsageError(f"{flag}: no diagnostic code starts with {', '.join(unknown)}")
    return patterns


def _wanted(code: str, select: tuple[str, ...], ignore: tuple[str, ...]) -> bool:
    if select and not code.startswith(select):
        return False
    return not code.startswith(ignore)


def summary_line(diagnostics: Sequence, files: int) -> str:
    """'2 errors, 1 warning in 3 files' (text mode prints it to stderr)."""
    counts = {name: 0 for name in SEVERITY_NAMES}
    for diag in diagnostics:
        counts[diag.severity.value] += 1
    where = f"in {files} file{'' if files == 1 else 's'}"
    if not diagnostics:
        return f"no problems found {where}"
    parts = [f"{n} {name}{'s' if n != 1 and name != 'info' else ''}"
             for name, n in counts.items() if n]
    return f"{', '.join(parts)} {where}"


def _write(stream: TextIO, text: str) -> None:
    """Write even when the stream's encoding cannot hold a source excerpt's characters."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
    stream.flush()
