"""The .qrule abstract syntax tree: frozen pydantic models, each with a span.

The parser (``qrules.syntax.parser``) is the only producer of these nodes; the
semantic stage reads them and never mutates them. Expressions are deliberately
generic (calls, names, attributes, ranges): spec constructors, observers and
predicates are all calls whose callee is resolved against registries by the
semantic stage, so the language grows by registering names, not by editing the
grammar.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from qrules.span import Span


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    span: Span


# --------------------------------------------------------------------- expressions


class IntLit(Node):
    kind: Literal["int"] = "int"
    value: int


class FloatLit(Node):
    kind: Literal["float"] = "float"
    value: float


class StringLit(Node):
    kind: Literal["string"] = "string"
    value: str


class BoolLit(Node):
    kind: Literal["bool"] = "bool"
    value: bool


class NoneLit(Node):
    kind: Literal["none"] = "none"


class Name(Node):
    kind: Literal["name"] = "name"
    id: str


class ListLit(Node):
    kind: Literal["list"] = "list"
    items: tuple["Expr", ...]


class Attribute(Node):
    kind: Literal["attribute"] = "attribute"
    value: "Expr"
    attr: str


class Index(Node):
    kind: Literal["index"] = "index"
    value: "Expr"
    index: "Expr"


class Each(Node):
    """``input[*]`` in a predicate: every value bound to a role, as a list."""

    kind: Literal["each"] = "each"
    value: "Expr"


class FirstOf(Node):
    """``first quantized else 0`` inside ``input[...]``: the first edge of the role for
    which the predicate function holds, else the edge at ``fallback`` (if given)."""

    kind: Literal["first_of"] = "first_of"
    #: The word written before the predicate (checked to be ``first``: QR112).
    word: str = "first"
    predicate: str
    fallback: Optional[int] = None
    predicate_span: Optional[Span] = Field(default=None, exclude=True)  # for QR223/QR327

    def __str__(self) -> str:
        text = f"{self.word} {self.predicate}"
        return text if self.fallback is None else f"{text} else {self.fallback}"

    # Two spellings of one selection are one edge: config keys and `same_as(...)`
    # references are looked up by (step, role, index), whatever their spans.
    def __eq__(self, other) -> bool:
        return isinstance(other, FirstOf) and (self.predicate, self.fallback) == (
            other.predicate, other.fallback)

    def __hash__(self) -> int:
        return hash((self.predicate, self.fallback))


class Keyword(Node):
    name: str
    value: "Expr"


class Call(Node):
    kind: Literal["call"] = "call"
    func: "Expr"
    args: tuple["Expr", ...] = ()
    kwargs: tuple[Keyword, ...] = ()


class Unary(Node):
    kind: Literal["unary"] = "unary"
    op: Literal["-", "not"]
    operand: "Expr"


class Binary(Node):
    kind: Literal["binary"] = "binary"
    op: Literal["+", "-", "*", "/", "%", "**", "and", "or", "==", "!=", "<", "<=", ">", ">="]
    left: "Expr"
    right: "Expr"


class Range(Node):
    """``lo..hi``: an inclusive quantization range."""

    kind: Literal["range"] = "range"
    low: "Expr"
    high: "Expr"


class Conditional(Node):
    """``then if cond else otherwise``."""

    kind: Literal["conditional"] = "conditional"
    then: "Expr"
    cond: "Expr"
    otherwise: "Expr"


Expr = Union[
    IntLit, FloatLit, StringLit, BoolLit, NoneLit, Name, ListLit, Attribute, Index,
    Each, Call, Unary, Binary, Range, Conditional, FirstOf,
]

# ------------------------------------------------------------------------ patterns


class OpRef(Node):
    kind: Literal["op"] = "op"
    name: str


class Region(Node):
    """``region(module_type "torch.nn.GRU")``: a whole module region as one step."""

    kind: Literal["region"] = "region"
    selector_kind: str
    selector: str
    kind_span: Optional[Span] = Field(default=None, exclude=True)  # where the kind is, for QR217


class Step(Node):
    kind: Literal["step"] = "step"
    atom: "Pattern"
    predicates: tuple[Expr, ...] = ()
    optional: bool = False
    #: ``add as sum``: the name config keys use for this step (default: the op name).
    label: Optional[str] = None


class Chain(Node):
    """``a -> b -> c``: each step consumes the previous step's output."""

    kind: Literal["chain"] = "chain"
    steps: tuple["Pattern", ...]
    # Per link: True for `~>` (the step before may have other users). () means all `->`.
    shared: tuple[bool, ...] = ()


class Alternation(Node):
    kind: Literal["alternation"] = "alternation"
    options: tuple["Pattern", ...]


Pattern = Union[OpRef, Region, Step, Chain, Alternation]

# -------------------------------------------------------------------------- items


class RoleKey(Node):
    """A config key: ``input``, ``input[1]``, ``input[*]``, ``add.input[1]``,
    ``input[first quantized else 0]``."""

    step: Optional[str] = None
    role: str
    index: Optional[Union[int, Literal["*"], FirstOf]] = None

    def __str__(self) -> str:
        return role_key_text(self.step, self.role, self.index)


def role_key_text(step: Optional[str], role: str, index) -> str:
    """How a role key is written (``add.input[1]``), also for edges the evaluator makes
    from keys."""
    text = f"{step}.{role}" if step else role
    return text if index is None else f"{text}[{index}]"


class ConfigEntry(Node):
    key: RoleKey
    value: Expr


class ConfigBody(Node):
    kind: Literal["body"] = "body"
    entries: tuple[ConfigEntry, ...]


class Header(Node):
    kind: Literal["header"] = "header"
    name: str
    version: Optional[str] = None
    name_span: Span
    # Where the version string is, for QR503. Excluded from dumps (like the other
    # diagnostic-only spans below) so serialized ASTs and their goldens do not change.
    version_span: Optional[Span] = Field(default=None, exclude=True)


class Include(Node):
    kind: Literal["include"] = "include"
    target: str
    is_path: bool


class TypeRef(Node):
    name: str
    choices: tuple[str, ...] = ()


class Param(Node):
    kind: Literal["param"] = "param"
    name: str
    type: TypeRef
    default: Optional[Expr] = None
    name_span: Span


#: ``RoleBinding.position`` of ``input: *``: every graph node the call reads.
EVERY_NODE = -1


class RoleBinding(Node):
    """``weight: 1``, ``input: 0[*]`` (every list element), ``output: item(0)``,
    ``input: *`` (every node argument: position ``EVERY_NODE``)."""

    role: str
    position: int
    element: Optional[Union[int, Literal["*"]]] = None
    through: Optional[str] = None

    def __str__(self) -> str:
        if self.position == EVERY_NODE:
            return f"{self.role}: *"
        if self.through is not None:
            return f"{self.role}: {self.through}({self.position})"
        if self.element is not None:
            return f"{self.role}: {self.position}[{self.element}]"
        return f"{self.role}: {self.position}"


class OpDef(Node):
    kind: Literal["op_def"] = "op_def"
    name: str
    targets: tuple[str, ...]
    target_spans: tuple[Span, ...]
    roles: tuple[RoleBinding, ...] = ()
    override: bool = False
    name_span: Span


class OpAlias(Node):
    kind: Literal["op_alias"] = "op_alias"
    name: str
    members: tuple[OpRef, ...]
    override: bool = False
    name_span: Span


class SpecDef(Node):
    kind: Literal["spec"] = "spec"
    name: str
    value: Expr
    override: bool = False
    name_span: Span


class ConfigDef(Node):
    kind: Literal["config"] = "config"
    name: str
    value: Union[ConfigBody, Expr]
    override: bool = False
    name_span: Span


class Rule(Node):
    kind: Literal["rule"] = "rule"
    name: str
    pattern: Pattern
    config: Union[ConfigBody, Expr]
    priority: int = 0
    condition: Optional[Expr] = None
    override: bool = False
    #: May match taken nodes; only fills edges that have no spec yet.
    amend: bool = False
    # `takes(...)`: the steps and edge producers the match owns; None: all its steps.
    takes: Optional[tuple[RoleKey, ...]] = None
    #: Writes its annotations with `_annotated=False` (the nodes are still taken).
    unmarked: bool = False
    unmarked_span: Optional[Span] = Field(default=None, exclude=True)  # for QR323
    #: Also matches ops whose output is not a floating-point tensor. Dumped only when
    #: set, so rules written before the option existed serialize as they did.
    any_dtype: bool = Field(default=False, exclude_if=lambda value: not value)
    name_span: Span
    #: `scoped(...)`: the nodes a scope test reads (under `scoping filters`); None: the
    #: match's steps. Dumped only when set, like `any_dtype`.
    scoped: Optional[tuple[RoleKey, ...]] = Field(default=None,
                                                  exclude_if=lambda value: value is None)


class Scope(Node):
    """``scope module_type "torch.nn.Linear" when dynamic { ... }``; a list of selectors
    (``scope module_name ["head", "*.head"]``) is in scope when any of them is."""

    kind: Literal["scope"] = "scope"
    selector_kind: str
    selectors: tuple[str, ...]
    condition: Optional[Expr] = None
    items: tuple["Item", ...]
    selector_spans: tuple[Span, ...]
    kind_span: Optional[Span] = Field(default=None, exclude=True)  # where the kind is, for QR217


class Phase(Node):
    kind: Literal["phase"] = "phase"
    name: str
    items: tuple["Item", ...]
    name_span: Span
    #: ``per node`` as written after the name (checked: QR112); None for a plain phase.
    mode: Optional[str] = Field(default=None, exclude_if=lambda mode: mode is None)
    mode_span: Optional[Span] = Field(default=None, exclude=True)

    @property
    def per_node(self) -> bool:
        return self.mode == "per node"


class When(Node):
    kind: Literal["when"] = "when"
    condition: Expr
    items: tuple["Item", ...]


class Disable(Node):
    kind: Literal["disable"] = "disable"
    what: str
    name: str
    name_span: Span


class Transform(Node):
    kind: Literal["transform"] = "transform"
    name: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Keyword, ...] = ()
    name_span: Span


class PatternDef(Node):
    """``pattern NAME = PATTERN``: a name a rule's pattern may use like an op name."""

    kind: Literal["pattern_def"] = "pattern_def"
    name: str
    pattern: Pattern
    name_span: Span


class AnnotationKind(Node):
    """``annotation x86_inductor``: which registered annotation class rules write."""

    kind: Literal["annotation"] = "annotation"
    name: str
    name_span: Span


class Scoping(Node):
    """``scoping filters``: how scopes apply to the ruleset's rules (docs/language.md)."""

    kind: Literal["scoping"] = "scoping"
    mode: str
    mode_span: Span


class ExtendRule(Node):
    """``extend rule NAME: | PATTERN``: PATTERN becomes one more alternative of the
    rule NAME (from an included file); everything else about the rule stays."""

    kind: Literal["extend_rule"] = "extend_rule"
    name: str
    pattern: Pattern
    name_span: Span


Item = Union[
    Header, Include, Param, OpDef, OpAlias, SpecDef, ConfigDef, Rule, Scope, Phase,
    When, Disable, Transform, AnnotationKind, PatternDef, ExtendRule, Scoping,
]


class File(Node):
    """One parsed .qrule file."""

    kind: Literal["file"] = "file"
    path: Optional[str] = None
    items: tuple[Item, ...]

    @property
    def header(self) -> Optional[Header]:
        return next((i for i in self.items if isinstance(i, Header)), None)
