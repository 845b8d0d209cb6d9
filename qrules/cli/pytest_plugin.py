"""A pytest plugin collecting ``.qtest`` rule-test files: one test item per case, failing
with the same ``FILE:LINE: FAIL ...`` lines as ``qrules test``.

Registered through the ``pytest11`` entry point (``qrules``) when qrules is installed;
a checkout's conftest.py can hook it in with ``pytest_collect_file`` from here (see
tests/rules/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qrules.cli.test import SUFFIX


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix == SUFFIX:
        return RuleTestFile.from_parent(parent, path=file_path)
    return None


class RuleTestFile(pytest.File):
    """One .qtest file: the ruleset and models load once, one item per case."""

    def collect(self):
        from qrules.engine.ruletest import RuleTestError, parse

        try:
            parsed = parse(self.path.read_text(encoding="utf-8"), str(self.path))
        except RuleTestError as err:
            raise self.CollectError(str(err)) from None
        for index, case in enumerate(parsed.cases):
            yield RuleTestCase.from_parent(self, name=f"line {case.line}: {case.model}",
                                           index=index)

    def results(self):
        """(parsed file, explanations), computed by the first case that asks."""
        if not hasattr(self, "_results"):
            from qrules.cli.test import run_file

            self._results = run_file(self.path)
        return self._results


class RuleTestCase(pytest.Item):
    def __init__(self, *, index: int, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def runtest(self):
        from qrules.engine.ruletest import check

        parsed, explanations = self.parent.results()
        case = parsed.cases[self.index]
        failures = check(case, explanations[self.index])
        if failures:
            raise RuleTestFailed("\n".join(f"{self.path}:{f.line}: FAIL {f.message}"
                                           for f in failures))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, RuleTestFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


class RuleTestFailed(AssertionError):
    """Expectations of one case not met (its message: one FAIL line each)."""
