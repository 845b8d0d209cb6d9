"""The ``qrules`` command line: ``qrules lint`` today; ``demo``, ``explain``, ``diff`` later.

Each subcommand is a pair of plain functions: ``_add_NAME(subparsers)`` declares its
arguments and ``_run_NAME(args) -> int`` does the work. Add a command by writing the
pair and listing the first in ``COMMANDS``.

Imports stay light at the top of this module: ``qrules lint`` runs in CI and in
pre-commit hooks, where importing torch would cost seconds and where torch may not
even be installed. Every command imports what it needs inside its ``_run_`` function.

Exit status (finding is ``qrules.checking``'s job, formatting ``qrules.report``'s):
0 nothing at or above ``--fail-on``, 1 findings at or above it, 2 usage or I/O error.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, TextIO

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
FORMATS = ("text", "json", "github", "sarif")
SEVERITY_NAMES = ("error", "warning", "info")


class UsageError(Exception):
    """Bad arguments or unreadable inputs: a one-line message and exit status 2."""


def version() -> str:
    """qrules's version: ``__version__``, the installed metadata, or the checkout's."""
    import qrules

    found = getattr(qrules, "__version__", None)
    if found:
        return str(found)
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("qrules")
    except PackageNotFoundError:  # a source checkout run with PYTHONPATH, never installed
        return _checkout_version() or "unknown"


def _checkout_version() -> Optional[str]:
    # A regex, not tomllib: tomllib is 3.11+ and qrules supports 3.10.
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    project = re.search(r"^\[project\]$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    match = project and re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), re.M)
    return match.group(1) if match else None


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qrules", description="Quantization rules for PyTorch: check and use .qrule files.")
    parser.add_argument("--version", action="version", version=f"qrules {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line and return the exit status; never shows a traceback."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: --help/--version (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        return args.run(args)
    except UsageError as err:
        for line in str(err).splitlines():
            print(f"qrules {args.command}: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `qrules lint ... | head`: the reader left; an I/O error
        _silence_stdout()
        return EXIT_USAGE
    except Exception as err:  # the promise is: no traceback, ever; exit 2
        print(f"qrules {args.command}: internal error: {type(err).__name__}: {err}\n"
              "This is a bug in qrules; please report it with the input that caused it.",
              file=sys.stderr)
        return EXIT_USAGE


def _silence_stdout() -> None:
    # Point fd 1 at devnull so the interpreter's final flush does not raise again
    # (the recipe from the Python docs on SIGPIPE).
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a captured or replaced stdout
        pass


# ----------------------------------------------------------------------------- lint

def _add_lint(subparsers) -> None:
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
    lint.set_defaults(run=_run_lint)


def _run_lint(args: argparse.Namespace) -> int:
    from qrules import report
    from qrules.checking import check_path
    from qrules.diagnostics import CODES, Severity

    select = _code_patterns(args.select, CODES, "--select")
    ignore = _code_patterns(args.ignore, CODES, "--ignore")
    for root in args.include_roots:
        if not Path(root).is_dir():
            raise UsageError(f"--include-root {root}: not a directory")
    files = collect_files(args.paths)

    found, sources = {}, {}
    for file in files:
        try:
            result = check_path(file, include_roots=args.include_roots or None)
        except OSError as err:
            raise UsageError(f"{file}: {err.strerror or err}") from None
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


#: Every subcommand's ``_add_`` function, in the order ``qrules --help`` lists them.
def _add_engine_commands(subparsers) -> None:
    # Imported here so `qrules lint` never loads the engine's module, let alone torch.
    from qrules import cli_engine

    cli_engine.add_demo(subparsers)
    cli_engine.add_explain(subparsers)
    cli_engine.add_diff(subparsers)


COMMANDS: tuple[Callable[..., None], ...] = (_add_lint, _add_engine_commands)
