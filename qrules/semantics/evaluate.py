"""Evaluate .qrule expressions: parameters, conditions, specs and configs.

One evaluator serves both stages. Linting runs it with parameters unbound: a
condition whose value depends on a parameter is UNKNOWN and both branches of an
``x if c else y`` are evaluated (and checked). ``bind`` runs it with every
parameter set: each expression then has exactly one value. Problems found on the
way are collected as diagnostics (deduplicated by code and place), never raised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from qrules.diagnostics import Diagnostic, Note, diagnostic
from qrules.semantics import registry
from qrules.semantics.symbols import Definition, Symbols
from qrules.semantics.values import (
    DerivedSpec, EdgeRef, FixedSpec, ObserverRef, QuantSpec, SharedSpec,
)
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


@dataclass(frozen=True)
class ConfigValue:
    """A config as evaluated: role key -> possible specs (one each when bound)."""

    entries: tuple[tuple[ast.RoleKey, tuple], ...]
    name: Optional[str] = None
    node: Optional[object] = None


def param_type(param: ast.Param) -> str:
    return param.type.name


class Evaluator:
    def __init__(self, symbols: Symbols, values: Optional[dict[str, Any]] = None):
        self.symbols = symbols
        self.values = values          # None while linting: parameters are unknown
        self.diagnostics: list[Diagnostic] = []
        self._seen: set[tuple] = set()
        self._active: list[tuple[str, str]] = []  # specs/configs being evaluated
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
            if not self._expect(operand, ("bool",), e.operand, "`not` needs a boolean"):
                return Typed("bool")
            return Typed("bool", _lift(lambda v: not v, operand.value))
        if not self._expect(operand, NUMERIC, e.operand, "`-` needs a number"):
            return Typed("unknown")
        return Typed(operand.type, _lift(lambda v: -v, operand.value))

    def _v_Binary(self, e):
        left, right = self.value(e.left), self.value(e.right)
        if e.op in ("and", "or"):
            ok = self._expect(left, ("bool",), e.left, f"`{e.op}` needs booleans")
            ok &= self._expect(right, ("bool",), e.right, f"`{e.op}` needs booleans")
            return Typed("bool", _logic(e.op, left.value, right.value) if ok else UNKNOWN)
        if e.op in ("==", "!=", "<", "<=", ">", ">="):
            if e.op not in ("==", "!="):
                ok = self._expect(left, NUMERIC, e.left, f"`{e.op}` compares numbers")
                ok &= self._expect(right, NUMERIC, e.right, f"`{e.op}` compares numbers")
                if not ok or "unknown" in (left.type, right.type):
                    return Typed("bool")
            else:
                self._check_choice(left, e.left, right, e.right)
                self._check_choice(right, e.right, left, e.left)
                if self._excluded(e.left, right) or self._excluded(e.right, left):
                    return Typed("bool", e.op == "!=")
            return Typed("bool", _lift2(_COMPARE[e.op], left.value, right.value))
        ok = self._expect(left, NUMERIC, e.left, f"`{e.op}` needs numbers")
        ok &= self._expect(right, NUMERIC, e.right, f"`{e.op}` needs numbers")
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
            typed = []
            for branch, truth in ((e.then, True), (e.otherwise, False)):
                implied: dict[str, Any] = {}
                _implied(e.cond, truth, implied, self.symbols.params)
                with _Assume(self, implied):
                    typed.append(self.value(branch))
            then, otherwise = typed
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

    def _expect(self, typed: Typed, kinds, expr, message: str) -> bool:
        """Report (QR301) a value of the wrong type; True when the type is fine."""
        if typed.type not in kinds and typed.type != "unknown":
            self.report("QR301", f"{message}; this is {_a(typed.type)}", expr.span)
            return False
        return True

    def condition(self, expr) -> Any:
        """A boolean condition: True, False, or UNKNOWN while linting."""
        typed = self.value(expr)
        self._expect(typed, ("bool",), expr, "a condition must be a boolean")
        return typed.value if typed.type == "bool" else UNKNOWN

    def assuming(self, conditions) -> "_Assume":
        """While linting, evaluate under what ``conditions`` imply about parameters:
        inside ``when not dynamic { ... }``, ``dynamic`` is false."""
        implied: dict[str, Any] = {}
        for condition in conditions:
            _implied(condition, True, implied, self.symbols.params)
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
                out = []
                for branch, truth in ((expr.then, True), (expr.otherwise, False)):
                    implied: dict[str, Any] = {}
                    _implied(expr.cond, truth, implied, self.symbols.params)
                    with _Assume(self, implied):
                        out.extend((b, {**implied, **more}) for b, more in self.branches(branch))
                return out
            return self.branches(expr.then if cond else expr.otherwise)
        return [(expr, {})]

    # ------------------------------------------------------------------ definitions
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

    def _enter(self, kind: str, name: str, span) -> bool:
        if (kind, name) in self._active:
            cycle = " -> ".join(n for _, n in self._active[self._active.index((kind, name)):])
            self.report("QR314", f"{kind} `{name}` refers to itself ({cycle} -> {name})", span)
            return False
        self._active.append((kind, name))
        return True

    # ------------------------------------------------------------------ specs
    def spec(self, expr, in_config: bool = False) -> list:
        """The specs an expression may denote (``None`` for ``none``)."""
        out: list = []
        for branch, implied in self.branches(expr):
            with _Assume(self, implied):
                out.extend(self._spec_branch(branch, in_config))
        return out

    def _spec_branch(self, expr, in_config: bool) -> list:
        if isinstance(expr, ast.NoneLit):
            return [None]
        if isinstance(expr, ast.Name):
            return self._named_spec(expr)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            constructor = _CONSTRUCTORS.get(expr.func.id)
            if constructor is None:
                known = ", ".join(sorted(_CONSTRUCTORS))
                self.report("QR208", f"unknown spec constructor `{expr.func.id}` "
                            f"(known: {known})", expr.func.span)
                return []
            if expr.func.id == "same_as" and not in_config:
                self.report("QR310", "`same_as(...)` names an edge of a match, so it "
                            "belongs in a config, not in a spec definition", expr.span)
                return []
            result = constructor(self, expr)
            return [] if result is None else [result]
        self.report("QR301", "expected a spec: a spec name, `none`, or a constructor such "
                    "as `affine(int8, -128..127)`", expr.span)
        return []

    def _named_spec(self, expr: ast.Name) -> list:
        return self._named(expr, "spec", "QR202", self.symbols.specs, self.symbols.configs,
                           lambda d: [_named(v, expr.id) for v in self.spec(d.node.value)])

    def _named(self, expr: ast.Name, kind: str, code: str, table: dict, other: dict,
               evaluate) -> list:
        """Evaluate every definition of a named spec or config that may be in force,
        reporting unknown names (with a hint when it is the other kind) and cycles."""
        definitions = table.get(expr.id)
        if definitions is None:
            other_kind = "config" if kind == "spec" else "spec"
            hint = f"; `{expr.id}` is a {other_kind}" if expr.id in other else ""
            self.report(code, f"unknown {kind} `{expr.id}`{hint}", expr.span)
            return []
        if not self._enter(kind, expr.id, expr.span):
            return []
        try:
            return [value for d in self.in_force(definitions) for value in evaluate(d)]
        finally:
            self._active.pop()

    # ------------------------------------------------------------------ configs
    def config(self, expr) -> list[Optional[ConfigValue]]:
        """The configs a rule's config (or ``config X = ...``) may denote."""
        if isinstance(expr, ast.ConfigBody):
            return [self.config_body(expr)]
        out: list[Optional[ConfigValue]] = []
        for branch, implied in self.branches(expr):
            if isinstance(branch, ast.NoneLit):
                out.append(None)
            elif isinstance(branch, ast.Name):
                with _Assume(self, implied):
                    out.extend(self._named_config(branch))
            else:
                self.report("QR301", "expected a config: a config name, `none`, or "
                            "`{ role: spec, ... }`", branch.span)
        return out

    def _named_config(self, expr: ast.Name) -> list[Optional[ConfigValue]]:
        def evaluate(definition):
            return [ConfigValue(v.entries, expr.id, definition.node)
                    if v is not None and v.name is None else v
                    for v in self.config(definition.node.value)]

        return self._named(expr, "config", "QR203", self.symbols.configs, self.symbols.specs,
                           evaluate)

    def config_body(self, body: ast.ConfigBody) -> ConfigValue:
        seen: dict[tuple, ast.ConfigEntry] = {}
        entries = []
        for entry in body.entries:
            key = (entry.key.step, entry.key.role, entry.key.index)
            if key in seen:
                self.report("QR315", f"`{_key_text(entry.key)}` is given twice in this "
                            "config", entry.key.span,
                            [Note(message="first given here", span=seen[key].key.span)])
                continue
            seen[key] = entry
            entries.append((entry.key, tuple(self.spec(entry.value, in_config=True))))
        return ConfigValue(tuple(entries), None, body)

    # ------------------------------------------------------------------ observers
    def observer(self, expr) -> Optional[ObserverRef]:
        branches = self.branches(expr)
        refs = []
        for branch, implied in branches:  # linting: check every branch, keep the first
            with _Assume(self, implied):
                refs.append(self._observer_branch(branch))
        return next((r for r in refs if r is not None), None)

    def _observer_branch(self, expr) -> Optional[ObserverRef]:
        if isinstance(expr, ast.Name):
            name, kwargs, span = expr.id, (), expr.span
        elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and not expr.args:
            name, kwargs, span = expr.func.id, expr.kwargs, expr.func.span
        else:
            self.report("QR310", "an observer is a registered name, optionally with keyword "
                        "arguments: `histogram(eps=2**-12)`", expr.span)
            return None
        entry = registry.OBSERVERS.get(name)
        if entry is None:
            known = ", ".join(sorted(registry.OBSERVERS))
            self.report("QR205", f"unknown observer or fake-quantizer `{name}` (registered: "
                        f"{known})", span)
            return None
        values = []
        for keyword in kwargs:
            if keyword.name not in entry.kwargs:
                allowed = ", ".join(sorted(entry.kwargs)) or "none"
                self.report("QR218", f"`{name}` takes no argument `{keyword.name}` "
                            f"(it takes: {allowed})", keyword.span)
                continue
            if keyword.name == "observer":
                values.append((keyword.name, self.observer(keyword.value)))
            else:
                values.append((keyword.name, self.value(keyword.value).value))
        return ObserverRef(name, tuple(values), span)

    # ------------------------------------------------------------------ edges
    def edge(self, expr) -> Optional[EdgeRef]:
        """``input``, ``input[1]``, ``weight``, ``add.input[1]``, ``output``,
        or ``producer(input[0])``: the tensor that feeds an input edge."""
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and \
                expr.func.id == "producer":
            if len(expr.args) != 1 or expr.kwargs:
                self.report("QR310", "`producer` takes one input edge: `producer(input)`",
                            expr.span)
                return None
            inner = self.edge(expr.args[0])
            if inner is None:
                return None
            if inner.role not in ("input", "extra") or inner.producer:
                self.report("QR310", "`producer(...)` takes an input edge, such as `input` "
                            "or `input[1]`", expr.args[0].span)
                return None
            return EdgeRef(inner.role, inner.step, inner.index, expr.span, producer=True)
        index = None
        if isinstance(expr, ast.Index):
            idx = self.value(expr.index)
            if idx.type == "int" and idx.value is UNKNOWN:
                return None  # an int parameter: checked when the ruleset is bound
            if idx.type != "int" or idx.value is UNKNOWN:
                self.report("QR310", "an edge index must be an integer", expr.index.span)
                return None
            index, expr = idx.value, expr.value
        if isinstance(expr, ast.Name):
            return EdgeRef(expr.id, None, index, expr.span)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            return EdgeRef(expr.attr, expr.value.id, index, expr.span)
        self.report("QR310", "expected an edge of the match: `input`, `input[1]`, `weight`, "
                    "`bias`, `output` or `step.role`", expr.span)
        return None


class _Assume:
    def __init__(self, ev: Evaluator, implied: dict[str, Any]):
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


# ---------------------------------------------------------------------- constructors


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


def _key_text(key: ast.RoleKey) -> str:
    text = f"{key.step}.{key.role}" if key.step else key.role
    return text if key.index is None else f"{text}[{key.index}]"


def _named(value, name: str):
    if value is None or isinstance(value, SharedSpec) or getattr(value, "name", None):
        return value
    return type(value)(**{**value.__dict__, "name": name})


class _Args:
    """Positional and keyword arguments of a spec constructor, with their checks."""

    def __init__(self, ev: Evaluator, call: ast.Call, keywords: set[str], flags: set[str]):
        self.ev, self.call, self.name = ev, call, call.func.id
        self.kwargs: dict[str, ast.Keyword] = {}
        for keyword in call.kwargs:
            if keyword.name not in keywords:
                allowed = ", ".join(sorted(keywords)) or "none"
                ev.report("QR218", f"`{self.name}` takes no keyword `{keyword.name}` "
                          f"(it takes: {allowed})", keyword.span)
            elif keyword.name in self.kwargs:
                ev.report("QR310", f"`{keyword.name}` is given twice", keyword.span)
            else:
                self.kwargs[keyword.name] = keyword
        self.dtype, self.range, self.flags = None, None, {}
        args = list(call.args)
        if not args:
            ev.report("QR310", f"`{self.name}` needs a dtype as its first argument, e.g. "
                      f"`{self.name}(int8, ...)`", call.span)
        else:
            self.dtype = self._dtype(args.pop(0))
        for arg in args:
            if isinstance(arg, ast.Range) and self.range is None:
                self.range = arg
            elif _flag_name(arg) in flags and _flag_name(arg) not in self.flags:
                self.flags[_flag_name(arg)] = arg
            else:
                expected = ", ".join(["a range `lo..hi`"] + [f"`{f}`" for f in sorted(flags)])
                ev.report("QR310", f"unexpected argument to `{self.name}`: expected "
                          f"{expected}", arg.span)

    def _dtype(self, expr) -> Optional[registry.DtypeInfo]:
        if isinstance(expr, ast.Name) and expr.id in registry.DTYPES:
            return registry.DTYPES[expr.id]
        known = ", ".join(registry.DTYPES)
        what = f"unknown dtype `{expr.id}`" if isinstance(expr, ast.Name) else \
            "expected a dtype name"
        self.ev.report("QR309", f"{what} (known: {known})", expr.span)
        return None

    def bounds(self, symmetric: bool = False) -> tuple:
        """(quant_min, quant_max), checked against the dtype; (None, None) for
        ``range=none``, which leaves both to the observer (the dtype's range), as
        torchao's EmbeddingQuantizer spec does."""
        dtype = self.dtype
        open_range = self.kwargs.get("range")
        if open_range is not None:
            if not isinstance(open_range.value, ast.NoneLit):
                self.ev.report("QR310", "`range=` takes only `none` (no bounds); write "
                               "bounds as a positional range: `-128..127`",
                               open_range.value.span)
            elif self.range is not None:
                self.ev.report("QR310", "give either a range `lo..hi` or `range=none`, "
                               "not both", open_range.span)
            else:
                return None, None
        if self.range is None:
            if dtype is None:
                return UNKNOWN, UNKNOWN
            return dtype.qmin, dtype.qmax
        low = self.ev.value(self.range.low)
        high = self.ev.value(self.range.high)
        for side, expr in ((low, self.range.low), (high, self.range.high)):
            self.ev._expect(side, NUMERIC, expr, "a range bound must be a number")
        lo, hi = low.value, high.value
        if UNKNOWN in (lo, hi) or not all(isinstance(v, (int, float)) for v in (lo, hi)):
            return UNKNOWN, UNKNOWN
        if dtype is not None and not dtype.is_float and not (
                _integral(lo) and _integral(hi)):
            self.ev.report("QR301", f"{dtype.name} range bounds must be integers",
                           self.range.span)
        if lo > hi:
            self.ev.report("QR302", f"empty range: {lo} > {hi}", self.range.span)
        elif dtype is not None and (lo < dtype.qmin or hi > dtype.qmax):
            self.ev.report("QR303", f"{lo}..{hi} does not fit {dtype.name} "
                           f"({dtype.qmin}..{dtype.qmax})", self.range.span)
        elif symmetric and lo != -hi and lo != -hi - 1:
            self.ev.report("QR304", f"a symmetric spec normally has a range symmetric about 0 "
                           f"(such as {-hi}..{hi}); {lo}..{hi} is not", self.range.span)
        return lo, hi

    def axis(self) -> Optional[int]:
        flag = self.flags.get("per_channel")
        if flag is None:
            return None
        if isinstance(flag, ast.Name):
            return 0
        extra = [k for k in flag.kwargs if k.name != "axis"]
        if flag.args or extra:
            self.ev.report("QR310", "`per_channel` takes only `axis=N`", flag.span)
        axis_kw = next((k for k in flag.kwargs if k.name == "axis"), None)
        if axis_kw is None:
            return 0
        axis = self.ev.value(axis_kw.value)
        if axis.type == "int" and axis.value is UNKNOWN:
            return None  # an int parameter: checked when the ruleset is bound
        if axis.type != "int" or axis.value is UNKNOWN or axis.value < 0:
            self.ev.report("QR305", "the channel axis must be a non-negative integer",
                           axis_kw.value.span)
            return None
        return axis.value

    def observer(self, default: str) -> ObserverRef:
        keyword = self.kwargs.get("observer")
        if keyword is None:
            return ObserverRef(default, (), self.call.span)
        return self.ev.observer(keyword.value) or ObserverRef(default, (), keyword.span)

    def number(self, key: str):
        keyword = self.kwargs.get(key)
        if keyword is None:
            self.ev.report("QR310", f"`{self.name}` needs `{key}=`", self.call.span)
            return UNKNOWN, None
        typed = self.ev.value(keyword.value)
        self.ev._expect(typed, NUMERIC, keyword.value, f"`{key}` must be a number")
        if typed.type not in NUMERIC:  # reported above; a string here must not reach math
            return UNKNOWN, keyword.value
        return typed.value, keyword.value


def _flag_name(expr) -> Optional[str]:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        return expr.func.id
    return None


def _quant(ev: Evaluator, call: ast.Call, symmetric: bool):
    args = _Args(ev, call, {"observer", "ch_axis", "range"}, {"per_channel", "dynamic"})
    low, high = args.bounds(symmetric)
    axis = args.axis()
    ch_axis = args.kwargs.get("ch_axis")
    if ch_axis is not None:
        # Recorded on a per-tensor spec too, as torchao's XNNPACK weight spec does
        # (`ch_axis=0` with per_tensor_symmetric); observers ignore it there.
        if "per_channel" in args.flags:
            ev.report("QR310", "give the axis once: `per_channel(axis=N)`", ch_axis.span)
        typed = ev.value(ch_axis.value)
        if typed.type != "int" or (typed.value is not UNKNOWN and typed.value < 0):
            ev.report("QR305", "the channel axis must be a non-negative integer",
                      ch_axis.value.span)
        elif typed.value is not UNKNOWN:
            axis = typed.value
    dynamic = "dynamic" in args.flags
    per_channel = "per_channel" in args.flags
    if dynamic and per_channel:
        ev.report("QR310", "a dynamic spec is per-tensor; drop `per_channel`", call.span)
    default = ("placeholder" if dynamic else
               "per_channel_minmax" if per_channel else "minmax")
    granularity = "per_channel" if per_channel else "per_tensor"
    scheme = f"{granularity}_{'symmetric' if symmetric else 'affine'}"
    if args.dtype is None or low is UNKNOWN:
        return None
    return QuantSpec(args.dtype.name, low, high, scheme, args.observer(default), axis,
                     dynamic, span=call.span)


def _affine(ev, call):
    return _quant(ev, call, symmetric=False)


def _symmetric(ev, call):
    return _quant(ev, call, symmetric=True)


def _fixed(ev, call):
    args = _Args(ev, call, {"scale", "zero_point"}, set())
    low, high = args.bounds()
    scale, scale_expr = args.number("scale")
    zero_point, zp_expr = args.number("zero_point")
    scale_float = None if scale is UNKNOWN else _as_float(scale)
    if scale is not UNKNOWN and scale_expr is not None and (
            scale_float is None or not math.isfinite(scale_float) or scale_float <= 0):
        ev.report("QR306", f"a fixed scale must be a positive number, not {scale}",
                  scale_expr.span)
    if zero_point is not UNKNOWN and zp_expr is not None:
        if not _integral(zero_point):
            ev.report("QR306", "a zero point must be an integer", zp_expr.span)
        elif low is not UNKNOWN and not low <= zero_point <= high:
            ev.report("QR306", f"zero point {zero_point} is outside the range {low}..{high}",
                      zp_expr.span)
    if args.dtype is None or UNKNOWN in (low, scale, zero_point) or scale_float is None or \
            not (_integral(zero_point) or math.isfinite(zero_point)):
        return None  # reported above; inf, nan and huge numbers have no FixedSpec
    return FixedSpec(args.dtype.name, low, high, scale_float, int(zero_point), span=call.span)


def _integral(value) -> bool:
    """A whole number? Any int is (float() of a huge one would overflow); inf, nan aren't."""
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _as_float(value) -> Optional[float]:
    try:
        return float(value)
    except OverflowError:  # an int past 1.8e308
        return None


def _float_qparams(ev, call):
    args = _Args(ev, call, {"observer", "range"}, {"per_channel"})
    low, high = args.bounds()
    axis = args.axis()
    if args.dtype is None or low is UNKNOWN:
        return None
    return QuantSpec(args.dtype.name, low, high, "per_channel_affine_float_qparams",
                     args.observer("per_channel_minmax"), 0 if axis is None else axis,
                     span=call.span)


def _derived(ev, call):
    args = _Args(ev, call, {"from", "fn"}, {"per_channel"})
    low, high = args.bounds()
    axis = args.axis()
    sources: list[EdgeRef] = []
    source_kw = args.kwargs.get("from")
    if source_kw is None or not isinstance(source_kw.value, ast.ListLit) or not (
            source_kw.value.items):
        ev.report("QR313", "`derived` needs `from=[edge, ...]`, e.g. "
                  "`from=[input, weight]`", (source_kw or call).span)
    else:
        sources = [e for e in map(ev.edge, source_kw.value.items) if e is not None]
    fn_kw = args.kwargs.get("fn")
    fn = "scale_product"
    if fn_kw is not None:
        if isinstance(fn_kw.value, ast.Name) and fn_kw.value.id in registry.DERIVE_FUNCTIONS:
            fn = fn_kw.value.id
        else:
            known = ", ".join(sorted(registry.DERIVE_FUNCTIONS))
            ev.report("QR205", f"unknown derive function (registered: {known})",
                      fn_kw.value.span)
    if args.dtype is None or low is UNKNOWN or not sources:
        return None
    scheme = "per_channel_symmetric" if axis is not None else "per_tensor_symmetric"
    return DerivedSpec(args.dtype.name, low, high, tuple(sources), fn, scheme, axis,
                       span=call.span)


def _same_as(ev, call):
    if len(call.args) != 1 or call.kwargs:
        ev.report("QR310", "`same_as` takes one edge: `same_as(input[0])`", call.span)
        return None
    edge = ev.edge(call.args[0])
    return None if edge is None else SharedSpec(edge, call.span)


_CONSTRUCTORS = {
    "affine": _affine, "symmetric": _symmetric, "fixed": _fixed,
    "float_qparams": _float_qparams, "derived": _derived, "same_as": _same_as,
}
CONSTRUCTOR_NAMES = frozenset(_CONSTRUCTORS)
