"""What the commands share: exit codes, ``UsageError``, the version, and the model
arguments of the engine's commands (``--model``, ``--input-shape``, ``--param``).

Nothing here imports torch at import time: ``qrules lint`` imports this module.

Model specs accepted by ``--model``: ``torchvision:NAME`` (built with weights=None),
``path/to/file.py:FACTORY`` (a function returning an nn.Module; the file is the
user's own code, run as they asked), or a saved ``.pt2`` program.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import warnings
from pathlib import Path
from typing import Optional

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or unreadable inputs: exit status 2 and the message, its first line
    prefixed with the command (a diagnostic's source line and caret stay as they are)."""


class ModelSpecError(ValueError):
    """A --model, --input-shape or --param the command cannot use."""


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
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    project = re.search(r"^\[project\]$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    match = project and re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), re.M)
    return match.group(1) if match else None


@contextlib.contextmanager
def _warnings_as_lint(command: Optional[str]):
    """qrules' AnnotationWarning (QR615) printed as `qrules lint` prints a warning, not
    with the file and line of torchao's code that called annotate."""
    from qrules.errors import AnnotationWarning

    shown = warnings.showwarning

    def show(message, category, *rest, **keywords):
        if issubclass(category, AnnotationWarning):
            print(f"qrules {command}: {message}" if command else f"qrules: {message}",
                  file=sys.stderr)
        else:
            shown(message, category, *rest, **keywords)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def usage_errors(run):
    """Bad input (unknown ruleset or model, wrong parameter) is a usage error: exit 2
    with the message, never a traceback."""
    def wrapped(args):
        from qrules.errors import QruleError

        from qrules.engine.progress import showing

        try:
            # `command` is set by the top-level parser; a parser built around one
            # command's `add` alone (as tests do) has none.
            command = getattr(args, "command", None)
            with showing(getattr(args, "progress", None)), _warnings_as_lint(command):
                return run(args)
        except (ModelSpecError, FileNotFoundError, QruleError) as err:
            raise UsageError(str(err)) from None
        except RuntimeError as err:
            from qrules.engine.diff import SideFailed

            if isinstance(err, SideFailed):
                raise UsageError(str(err)) from None
            raise

    return wrapped


def parse_params(pairs: list[str], flag: str = "--param") -> dict:
    """``--param NAME=VALUE`` values: true/false, then int, then float, else the text."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ModelSpecError(f"{flag} takes NAME=VALUE, got {pair!r}")
        lowered = value.lower()
        if lowered in ("true", "false"):
            out[key] = lowered == "true"
        else:
            try:
                out[key] = int(value)
            except ValueError:
                try:
                    out[key] = float(value)
                except ValueError:
                    out[key] = value
    return out


def checked_ruleset(spec: str):
    """A built-in ruleset name or ``.qrule`` file, checked but not bound, so a command
    can see the parameters it declares (``.params``) before binding some with
    ``bound_ruleset``. Raises QruleError (its errors) or FileNotFoundError."""
    from qrules.api import resolve_ruleset
    from qrules.checking import check_ruleset_path

    ruleset = check_ruleset_path(resolve_ruleset(spec))
    if not ruleset.ok:
        ruleset.bind()  # raises QruleError with the ruleset's errors, as qrules.load does
    return ruleset


def bound_ruleset(checked, params: dict):
    """``qrules.load(spec, **params)`` for a ruleset ``checked_ruleset`` gave."""
    from qrules.api import LoadedRuleset

    return LoadedRuleset(checked.bind(**params), checked)


def parse_shape(text: Optional[str]) -> Optional[tuple[int, ...]]:
    """``--input-shape 1,3,224,224`` (or ``1x3x224x224``) as a tuple; None when absent."""
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise ModelSpecError(f"--input-shape takes integers like 1,3,224,224, got {text!r}")


def add_ruleset_arg(parser: argparse.ArgumentParser, default: Optional[str]) -> None:
    """``--ruleset``: required when there is no default."""
    parser.add_argument("--ruleset", default=default, required=default is None,
                        help="a built-in ruleset name or a .qrule file"
                             + (f" (default: {default})" if default else ""))


def add_model_args(parser: argparse.ArgumentParser, default_model: Optional[str]) -> None:
    parser.add_argument("--model", default=default_model, required=default_model is None,
                        help="torchvision:NAME, FILE.py:FACTORY or FILE.pt2"
                             + (f" (default: {default_model})" if default_model else ""))
    parser.add_argument("--input-shape", metavar="N,C,H,W",
                        help="example input shape (default for torchvision: 1,3,224,224)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a ruleset parameter, e.g. per_channel=true (repeatable)")
    parser.add_argument("--progress", action="store_const", const=True, default=None,
                        help="show each stage's progress on stderr even when stderr is not "
                             "a terminal (shown on a terminal anyway)")


def load_model(spec: str, input_shape: Optional[tuple[int, ...]]):
    """(module or exported GraphModule, example inputs) for a --model spec."""
    import torch

    if spec.startswith("torchvision:"):
        import torchvision

        name = spec.split(":", 1)[1]
        if name not in torchvision.models.list_models():
            raise ModelSpecError(f"torchvision has no model {name!r}")
        model = torchvision.models.get_model(name, weights=None).eval()
        return model, (torch.randn(*(input_shape or (1, 3, 224, 224))),)
    if spec.endswith(".pt2"):
        if not Path(spec).is_file():
            raise ModelSpecError(f"no such program: {spec}")
        program = torch.export.load(spec)
        inputs = program.example_inputs[0] if program.example_inputs else None
        if inputs is None:
            if input_shape is None:
                raise ModelSpecError(f"{spec} stores no example inputs; pass --input-shape")
            inputs = (torch.randn(*input_shape),)
        return program.module(), tuple(inputs)
    path, sep, factory = spec.rpartition(":")
    if not sep or not path.endswith(".py"):
        raise ModelSpecError(f"--model takes torchvision:NAME, FILE.py:FACTORY or FILE.pt2, "
                             f"got {spec!r}")
    if not Path(path).is_file():
        raise ModelSpecError(f"no such file: {path}")
    if input_shape is None:
        raise ModelSpecError(f"{spec}: pass --input-shape for a model from a Python file")
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("qrules_user_model", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    make = getattr(module, factory, None)
    if not callable(make):
        raise ModelSpecError(f"{path} has no callable {factory!r}")
    return make().eval(), (torch.randn(*input_shape),)


def exported(model, inputs):
    """The model as an exported GraphModule (a loaded ``.pt2`` already is one)."""
    import torch

    if isinstance(model, torch.fx.GraphModule):
        return model
    from qrules.adapter.torchao import export_module
    from qrules.engine.progress import stage

    with stage("exporting"):
        return export_module(model, inputs)
