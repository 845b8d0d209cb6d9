"""The expressions of the .qrule AST (literals, names, calls, operators, ranges) and
the base of every AST node; ``qrules.syntax.ast`` re-exports them beside the items they
make up, so users name them all as ``ast.X``.
"""


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
    which the predicate function holds, else the edge at ``fallback`` (if given).
    ``each shared``: every edge it holds for, each entry placed edge by edge."""

    kind: Literal["first_of"] = "first_of"
    #: The word written before the predicate (checked to be ``first`` or ``each``: QR112).
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
        return isinstance(other, FirstOf) and (self.word, self.predicate, self.fallback) == (
            other.word, other.predicate, other.fallback)

    def __hash__(self) -> int:
        return hash((self.word, self.predicate, self.fallback))

    @property
    def each(self) -> bool:
        return self.word == "each"


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


class StoredAs(Node):
    """``uint16 as int32``: values of one dtype (its range) stored in a wider one."""

    kind: Literal["stored_as"] = "stored_as"
    dtype: Name
    storage: Name


Expr = Union[
    IntLit, FloatLit, StringLit, BoolLit, NoneLit, Name, ListLit, Attribute, Index,
    Each, Call, Unary, Binary, Range, Conditional, FirstOf, StoredAs,
]
