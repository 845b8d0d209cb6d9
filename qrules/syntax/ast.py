"""The .qrule abstract syntax tree: frozen pydantic models, each with a span.

The parser (``qrules.syntax.parser``) is the only producer of these nodes; the
semantic stage reads them and never mutates them. Expressions are deliberately
generic (calls, names, attributes, ranges): spec constructors, observers and
predicates are all calls whose callee is resolved against registries by the
semantic stage, so the language grows by registering names, not by editing the
grammar.
"""


from typing import Literal, Optional, Union

from pydantic import Field

from qrules.span import Span
# Re-exported (`X as X`): every node of the tree is named `ast.X`.
from qrules.syntax.expressions import (
    Node as Node, IntLit as IntLit, FloatLit as FloatLit, StringLit as StringLit,
    BoolLit as BoolLit, NoneLit as NoneLit, Name as Name, ListLit as ListLit,
    Attribute as Attribute, Index as Index, Each as Each, FirstOf as FirstOf,
    Keyword as Keyword, Call as Call, Unary as Unary, Binary as Binary, Range as Range,
    Conditional as Conditional, StoredAs as StoredAs, Expr as Expr,
)


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
    #: The words after the name, as written: `after annotate` runs the transform
    #: once annotations are written (anything else is QR117); None runs it before.
    stage: Optional[str] = None
    stage_span: Optional[Span] = Field(default=None, exclude=True)

    @property
    def after_annotate(self) -> bool:
        return self.stage is not None
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
