"""``qrules test``: run rule-test files (``.qtest``) against their ruleset, or rewrite
their expectations with ``--update``. torch is imported only when the command runs.

The format, parsing and checking are in ``qrules.engine.ruletest``; this module loads
the ruleset and the models and runs ``explain`` (``run_file``, which the pytest plugin
``qrules.cli.pytest_plugin`` reuses).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qrules.cli.common import (
    EXIT_CLEAN, EXIT_FINDINGS, ModelSpecError, UsageError, bound_ruleset, checked_ruleset,
    exported, load_model, parse_params, parse_shape, usage_errors,
)

SUFFIX = ".qtest"


def add(subparsers) -> None:
    parser = subparsers.add_parser(
        "test", help="run rule tests (.qtest files): which rule annotates which node, "
                     "which nodes stay float and why, coverage",
        description="Each .qtest file names a ruleset and cases: a model (torchvision:NAME, "
                    "FILE.py:FACTORY SHAPE or FILE.pt2), parameters, and expectations "
                    "(NODE: RULE [KEY=SPEC]..., NODE: float because REASON, coverage >= N%). "
                    "Prints FILE:LINE: FAIL ... per expectation not met. Exit status: 0 all "
                    "met, 1 a failure, 2 usage error (a file that does not parse, a model "
                    "or ruleset that does not load).")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help=".qtest files, or directories searched for them recursively")
    parser.add_argument("--update", action="store_true",
                        help="rewrite each file's node lines from the current annotations "
                             "(graph order) and lower failing coverage bounds; review the "
                             "diff like a golden file")
    parser.set_defaults(run=usage_errors(run))


def collect(paths: list[str]) -> list[Path]:
    """The .qtest files named or under the directories named, sorted, each once."""
    found: dict[Path, None] = {}
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found.update(dict.fromkeys(sorted(path.rglob(f"*{SUFFIX}"))))
        elif path.is_file():
            found[path] = None
        else:
            raise UsageError(f"no such file or directory: {name}")
    return list(found)


def run_file(path: Path) -> tuple:
    """(parsed file, one Explanation per case) for ``path``; UsageError naming the
    file and line when it does not parse or a case's ruleset or model does not load."""
    import qrules
    from qrules.engine.ruletest import RuleTestError, parse

    try:
        parsed = parse(path.read_text(encoding="utf-8"), str(path))
    except RuleTestError as err:
        raise UsageError(str(err)) from None
    checked = checked_ruleset(_beside(path, parsed.ruleset, ".qrule"))
    explanations = []
    for case in parsed.cases:
        try:
            ruleset = bound_ruleset(checked, parse_params(list(case.params), "param"))
            model, inputs = load_model(_beside(path, case.model, ".py", ".pt2"),
                                       parse_shape(case.input_shape))
        except ModelSpecError as err:
            raise UsageError(f"{path}:{case.line}: {err}") from None
        explanations.append(qrules.explain(exported(model, inputs), ruleset, qat=case.qat))
    return parsed, explanations


def _beside(test_file: Path, spec: str, *suffixes: str) -> str:
    """A file named in a .qtest is relative to the .qtest file (``models.py:make``)."""
    name, sep, factory = spec.partition(":") if ".py:" in spec else (spec, "", "")
    if not name.endswith(suffixes) or Path(name).is_absolute():
        return spec
    return str(test_file.parent / name) + sep + factory


def run(args: argparse.Namespace) -> int:
    from qrules.engine.ruletest import check, updated

    failed = expectations = 0
    for path in collect(args.paths):
        parsed, explanations = run_file(path)
        if args.update:
            text = path.read_text(encoding="utf-8")
            new = updated(text, parsed, explanations)
            if new != text:
                path.write_text(new, encoding="utf-8")
                print(f"{path}: updated")
            continue
        for case, explanation in zip(parsed.cases, explanations):
            expectations += len(case.nodes) + len(case.coverage)
            for failure in check(case, explanation):
                failed += 1
                print(f"{path}:{failure.line}: FAIL {failure.message}")
    if not args.update:
        print(f"{expectations} expectations, {failed} failed")
    return EXIT_FINDINGS if failed else EXIT_CLEAN
