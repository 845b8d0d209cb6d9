"""Evaluate plain .qrule expressions: parameters, arithmetic, logic, conditions.

Linting runs the evaluator with parameters unbound: a condition whose value depends
on a parameter is UNKNOWN, and both branches of an ``x if c else y`` are evaluated
(and checked) under what their condition implies about the parameters. ``bind``
runs it with every parameter set: each expression then has exactly one value.
Problems found on the way are collected as diagnostics (deduplicated by code and
place), never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from qrules.diagnostics import Diagnostic, diagnostic
from qrules.semantics import registry
from qrules.semantics.entries import Definition
from qrules.semantics.symbols import Symbols
from qrules.syntax import ast

class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:  # an unknown must never be used as a truth value
        raise TypeError("UNKNOWN has no truth value")


UNKNOWN = _Unknown()
NUMERIC = ("int", "float")


@dataclass(frozen=True)
class Typed:
    type: str          # bool, int, float, str, choice, unknown
    value: Any = UNKNOWN



def param_type(param: ast.Param) -> str:
    return param.type.name


class ExpressionEvaluator:
    """Values and conditions of parameter expressions, and which definitions are in
    force. ``diagnostics`` holds what it found, each problem once."""

    def __init__(self, symbols: Symbols, values: Optional[dict[str, Any]] = None):
        self.symbols = symbols
        self.values = values          # None while linting: parameters are unknown
        self.diagnostics: list[Diagnostic] = []
        self._seen: set[tuple] = set()
        self.assumed: dict[str, Any] = {}  # parameter values implied by conditions
        self.choices = {c for d in symbols.params.values() for c in d.node.type.choices}

    # ------------------------------------------------------------------ reporting
    def report(self, code: str, message: str, span, notes=()) -> None:
        key = (code, span.file, span.start, span.end, message)
        if key not in self._seen:
            self._seen.add(key)
            self.diagnostics.append(diagnostic(code, message, span, notes))

    # ------------------------------------------------------------------ parameters
    def value(self, expr) -> Typed:
        """A parameter-context expression: literals, parameters, arithmetic, logic."""
        method = getattr(self, f"_v_{type(expr).__name__}", None)
        if method is None:
            self.report("QR301", "expected a plain value here (a number, string, boolean "
                        "or parameter)", expr.span)
            return Typed("unknown")
        return method(expr)

    def _v_IntLit(self, e):
        return Typed("int", e.value)

    def _v_FloatLit(self, e):
        return Typed("float", e.value)

    def _v_StringLit(self, e):
        return Typed("str", e.value)

    def _v_BoolLit(self, e):
        return Typed("bool", e.value)

    def _v_NoneLit(self, e):
        return Typed("none", None)

    def _v_Name(self, e):
        definition = self.symbols.params.get(e.id)
        if definition is not None:
            kind = param_type(definition.node)
            if kind not in registry.PARAM_TYPES:  # QR219 says so; no type errors on top
                return Typed("unknown")
            if e.id in self.assumed:
                assumed = self.assumed[e.id]
                return Typed(kind, UNKNOWN if isinstance(assumed, _Excluded) else assumed)
            if self.values is None or e.id not in self.values:
                return Typed(kind)
            return Typed(kind, self.values[e.id])
        if e.id in self.choices:
            return Typed("choice", e.id)
        hint = ""
        if e.id in self.symbols.specs or e.id in self.symbols.configs:
            hint = f"; `{e.id}` is a spec or config, not a parameter"
        self.report("QR204", f"unknown name `{e.id}`: not a parameter{hint}", e.span)
        return Typed("unknown")

    # An operand of the wrong type is reported once (QR301) and makes the result's
    # value UNKNOWN: computing it anyway would raise (`"a" + 1`) or invent a value
    # (`not 3` is false, so a `when not 3` would also be "always false", QR406).
    def _v_Unary(self, e):
        operand = self.value(e.operand)
        if e.op == "not":
            if not self.expect(operand, ("bool",), e.operand, "`not` needs a boolean"):
                return Typed("bool")
            return Typed("bool", _lift(lambda v: not v, operand.value))
        if not self.expect(operand, NUMERIC, e.operand, "`-` needs a number"):
            return Typed("unknown")
        return Typed(operand.type, _lift(lambda v: -v, operand.value))

    def _v_Binary(self, e):
        left, right = self.value(e.left), self.value(e.right)
        if e.op in ("and", "or"):
            ok = self.expect(left, ("bool",), e.left, f"`{e.op}` needs booleans")
            ok &= self.expect(right, ("bool",), e.right, f"`{e.op}` needs booleans")
            return Typed("bool", _logic(e.op, left.value, right.value) if ok else UNKNOWN)
        if e.op in ("==", "!=", "<", "<=", ">", ">="):
            if e.op not in ("==", "!="):
                ok = self.expect(left, NUMERIC, e.left, f"`{e.op}` compares numbers")
                ok &= self.expect(right, NUMERIC, e.right, f"`{e.op}` compares numbers")
                if not ok or "unknown" in (left.type, right.type):
                    return Typed("bool")
            else:
                self._check_choice(left, e.left, right, e.right)
                self._check_choice(right, e.right, left, e.left)
                if self._excluded(e.left, right) or self._excluded(e.right, left):
                    return Typed("bool", e.op == "!=")
            return Typed("bool", _lift2(_COMPARE[e.op], left.value, right.value))
        ok = self.expect(left, NUMERIC, e.left, f"`{e.op}` needs numbers")
        ok &= self.expect(right, NUMERIC, e.right, f"`{e.op}` needs numbers")
        kind = "int" if left.type == right.type == "int" and e.op != "/" else "float"
        if not ok or "unknown" in (left.type, right.type):
            return Typed("unknown" if not ok else kind)
        try:
            return Typed(kind, _lift2(_ARITH[e.op], left.value, right.value))
        except (ZeroDivisionError, OverflowError, ValueError) as err:
            self.report("QR301", f"cannot compute this: {err}", e.span)
            return Typed("unknown")

    def _v_Conditional(self, e):
        cond = self.condition(e.cond)
        if cond is UNKNOWN:
            then, otherwise = (self.value(branch) for branch, _ in self._both_branches(e))
            return Typed(then.type if then.type == otherwise.type else "unknown")
        return self.value(e.then if cond else e.otherwise)

    def _check_choice(self, enum_side: Typed, enum_expr, other: Typed, other_expr) -> None:
        if enum_side.type != "enum" or other.type not in ("choice", "str"):
            return
        # The choices of this enum (`mode == b` is wrong when only another enum has
        # `b`); an enum written without choices is QR219 already.
        definition = self.symbols.params.get(getattr(enum_expr, "id", None))
        enum_choices = definition.node.type.choices if definition else ()
        if enum_choices and other.value not in enum_choices:
            self.report("QR311", f"`{other.value}` is not one of the enum's choices "
                        f"({', '.join(enum_choices)})", other_expr.span)

    def _excluded(self, expr, other: Typed) -> bool:
        """Inside `when mode != a { ... }`, `mode == a` is known to be false."""
        assumed = self.assumed.get(expr.id) if isinstance(expr, ast.Name) else None
        return isinstance(assumed, _Excluded) and other.value in assumed.choices

    def expect(self, typed: Typed, kinds, expr, message: str) -> bool:
        """Report (QR301) a value of the wrong type; True when the type is fine."""
        if typed.type not in kinds and typed.type != "unknown":
            self.report("QR301", f"{message}; this is {_a(typed.type)}", expr.span)
            return False
        return True

    def condition(self, expr) -> Any:
        """A boolean condition: True, False, or UNKNOWN while linting."""
        typed = self.value(expr)
        self.expect(typed, ("bool",), expr, "a condition must be a boolean")
        return typed.value if typed.type == "bool" else UNKNOWN

    def assuming(self, conditions) -> "_Assume":
        """While linting, evaluate under what ``conditions`` imply about parameters:
        inside ``when not dynamic { ... }``, ``dynamic`` is false."""
        implied: dict[str, Any] = {}
        for condition in conditions:
            _implied(condition, True, implied, self.symbols.params)
        return _Assume(self, implied)

    def assume(self, implied: dict[str, Any]) -> "_Assume":
        """Evaluate under parameter values a branch implies (see ``branches``)."""
        return _Assume(self, implied)

    def conditions_hold(self, conditions) -> Any:
        result: Any = True
        for expr in conditions:
            value = self.condition(expr)
            if value is False:
                return False
            if value is UNKNOWN:
                result = UNKNOWN
        return result

    def branches(self, expr) -> list[tuple[object, dict]]:
        """Strip conditionals: the alternatives an expression may take, each with the
        parameter values its branch implies (``x if dynamic else y``: x is only
        reached with dynamic true), so nested conditionals stay consistent."""
        if isinstance(expr, ast.Conditional):
            cond = self.condition(expr.cond)
            if cond is UNKNOWN:
                return [(b, {**implied, **more}) for branch, implied in self._both_branches(expr)
                        for b, more in self.branches(branch)]
            return self.branches(expr.then if cond else expr.otherwise)
        return [(expr, {})]


    def _both_branches(self, expr: ast.Conditional):
        """Each branch of ``x if c else y`` with what reaching it implies about the
        parameters; the caller's work on a branch runs under that assumption."""
        for branch, truth in ((expr.then, True), (expr.otherwise, False)):
            implied: dict[str, Any] = {}
            _implied(expr.cond, truth, implied, self.symbols.params)
            with _Assume(self, implied):
                yield branch, implied

    def in_force(self, definitions: list[Definition]) -> list[Definition]:
        """The definitions that may be in force: the last whose conditions hold."""
        possible: list[Definition] = []
        for definition in reversed(definitions):
            holds = self.conditions_hold(definition.conditions)
            if holds is False:
                continue
            possible.append(definition)
            if holds is True:
                break
        return possible

class _Assume:
    def __init__(self, ev: ExpressionEvaluator, implied: dict[str, Any]):
        self.ev, self.implied, self.saved = ev, implied, {}

    def __enter__(self):
        self.saved = dict(self.ev.assumed)
        self.ev.assumed.update(self.implied)
        return self.ev

    def __exit__(self, *exc):
        self.ev.assumed = self.saved


def _implied(expr, truth: bool, out: dict[str, Any], params) -> None:
    """Parameter values that make ``expr`` evaluate to ``truth`` (simple forms only)."""
    if isinstance(expr, ast.Name) and expr.id in params:
        if params[expr.id].node.type.name == "bool":
            out[expr.id] = truth
    elif isinstance(expr, ast.Unary) and expr.op == "not":
        _implied(expr.operand, not truth, out, params)
    elif isinstance(expr, ast.Binary) and expr.op == "and" and truth:
        _implied(expr.left, True, out, params)
        _implied(expr.right, True, out, params)
    elif isinstance(expr, ast.Binary) and expr.op == "or" and not truth:
        _implied(expr.left, False, out, params)
        _implied(expr.right, False, out, params)
    elif isinstance(expr, ast.Binary) and expr.op in ("==", "!="):
        test = _enum_test(expr, params)
        if test is None:
            return
        name, choice = test
        previous = out.get(name)
        if truth == (expr.op == "=="):  # `mode == a` holds, or `mode != a` fails
            out[name] = choice
        elif previous is None or isinstance(previous, _Excluded):
            # `mode != a` holds: remember what `mode` is not; once one choice is left,
            # that is its value (`when mode != static` with `enum(static, dynamic)`).
            excluded = (previous.choices if previous else frozenset()) | {choice}
            left = [c for c in params[name].node.type.choices if c not in excluded]
            out[name] = left[0] if len(left) == 1 else _Excluded(excluded)


@dataclass(frozen=True)
class _Excluded:
    """An assumption that an enum parameter is none of ``choices``."""

    choices: frozenset


def contradictory(conditions, params) -> bool:
    """Can ``conditions`` never hold together, whatever the parameters are? A decision
    over the conjunction of their parameter literals (``qat``, ``not qat``, ``mode == a``,
    ``mode != b``, through ``and``, ``not`` and a false ``or``): one parameter given two
    values, a value also excluded, or every choice of an enum excluded."""
    literals: list[tuple[str, Any]] = []
    for condition in conditions:
        _literals(condition, True, literals, params)
    values: dict[str, Any] = {}
    excluded: dict[str, frozenset] = {}
    for name, value in literals:
        if isinstance(value, _Excluded):
            excluded[name] = excluded.get(name, frozenset()) | value.choices
        elif values.setdefault(name, value) != value:
            return True
    return any(values.get(name) in choices or set(params[name].node.type.choices) <= choices
               for name, choices in excluded.items())


def _literals(expr, truth: bool, out: list, params) -> None:
    if isinstance(expr, ast.Name) and expr.id in params and \
            params[expr.id].node.type.name == "bool":
        out.append((expr.id, truth))
    elif isinstance(expr, ast.Unary) and expr.op == "not":
        _literals(expr.operand, not truth, out, params)
    elif isinstance(expr, ast.Binary) and expr.op == ("and" if truth else "or"):
        _literals(expr.left, truth, out, params)
        _literals(expr.right, truth, out, params)
    elif isinstance(expr, ast.Binary) and expr.op in ("==", "!="):
        test = _enum_test(expr, params)
        if test is not None:
            name, choice = test
            holds = truth == (expr.op == "==")
            out.append((name, choice if holds else _Excluded(frozenset({choice}))))


def _enum_test(expr: ast.Binary, params):
    """``mode == a`` / ``"a" != mode`` on an enum parameter: (parameter, choice)."""
    for side, other in ((expr.left, expr.right), (expr.right, expr.left)):
        if isinstance(side, ast.Name) and side.id in params and \
                params[side.id].node.type.name == "enum":
            if isinstance(other, ast.Name):
                return side.id, other.id
            if isinstance(other, ast.StringLit):
                return side.id, other.value
    return None



def _a(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean",
            "enum": "an enum", "choice": "an enum choice", "none": "`none`"}.get(kind, kind)


def _lift(fn, value):
    return UNKNOWN if value is UNKNOWN else fn(value)


def _lift2(fn, left, right):
    return UNKNOWN if left is UNKNOWN or right is UNKNOWN else fn(left, right)


def _logic(op: str, left, right):
    if op == "and":
        if left is False or right is False:
            return False
        return UNKNOWN if UNKNOWN in (left, right) else True
    if left is True or right is True:
        return True
    return UNKNOWN if UNKNOWN in (left, right) else False


def _power(base, exp):
    if abs(exp) > 256:
        raise OverflowError("exponent too large")
    return base ** exp


_COMPARE = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
_ARITH = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
          "/": lambda a, b: a / b, "%": lambda a, b: a % b, "**": _power}

