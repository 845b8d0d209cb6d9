"""The rule tests of the built-in rulesets (``*.qtest`` here) are pytest items: qrules's
plugin collects them, hooked in here unless its ``pytest11`` entry point (an installed
qrules) registered it already."""

from qrules.cli import pytest_plugin


def pytest_collect_file(file_path, parent):
    if parent.config.pluginmanager.has_plugin("qrules"):
        return None
    return pytest_plugin.pytest_collect_file(file_path, parent)
