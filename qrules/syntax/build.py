"""Parse -> AST: one method per grammar rule (or alias), called with the rule's
position (``meta``) and children as the driver reduces it; the expressions' methods
are in ``build_expressions``."""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Optional

from qrules.span import Span
from qrules.syntax import ast
from qrules.syntax.build_expressions import ExpressionBuilder, make_full_node, make_node, unquote
from qrules.syntax.driver import Token



class _Takes(tuple):
    """The items of a `takes(...)` clause, told apart from a rule's other children."""


class _Stage:
    """The words after a transform's name (`after annotate`), until transform_decl reads
    them."""

    def __init__(self, text: str, span: Span):
        self.text, self.span = text, span
class _Scoped(tuple):
    """The items of a `scoped(...)` clause, told apart from `takes(...)` by its type."""


class _Label(str):
    """A step label, told apart from the step's other children by its type."""


class AstBuilder(ExpressionBuilder):
    """Builds frozen AST nodes; ``line_offset`` / ``pos_offset`` place a chunk in its file."""

    def __init__(self, file: Optional[str], line_offset: int = 0, pos_offset: int = 0):
        self.file = file
        self.line_offset = line_offset
        self.pos_offset = pos_offset

    # ------------------------------------------------------------------ spans
    def _span(self, meta) -> Span:
        if meta.empty:
            return make_node(Span, file=self.file, line=1 + self.line_offset, col=1,
                             end_line=1 + self.line_offset, end_col=1,
                             start=self.pos_offset, end=self.pos_offset)
        return make_full_node(Span, {
            "file": self.file, "line": meta.line + self.line_offset, "col": meta.column,
            "end_line": meta.end_line + self.line_offset, "end_col": meta.end_column,
            "start": meta.start_pos + self.pos_offset, "end": meta.end_pos + self.pos_offset})

    def _tok(self, token: Token) -> Span:
        return make_full_node(Span, {
            "file": self.file, "line": token.line + self.line_offset, "col": token.column,
            "end_line": token.end_line + self.line_offset, "end_col": token.end_column,
            "start": token.start_pos + self.pos_offset, "end": token.end_pos + self.pos_offset})

    # ------------------------------------------------------------------ file
    def start(self, meta, items):
        return make_node(ast.File, span=self._span(meta), path=self.file, items=tuple(items))

    def header(self, meta, children):
        name = children[0]
        version = unquote(children[1]) if len(children) > 1 else None
        version_span = self._tok(children[1]) if len(children) > 1 else None
        return make_node(ast.Header, span=self._span(meta), name=str(name), version=version,
                          name_span=self._tok(name), version_span=version_span)

    def include(self, meta, children):
        (target,) = children
        is_path = target.type == "STRING"
        return make_node(ast.Include, span=self._span(meta), is_path=is_path,
                           target=unquote(target) if is_path else str(target))

    def name_list(self, meta, children):
        return tuple(unquote(c) if c.type == "STRING" else str(c) for c in children)

    def type_ref(self, meta, children):
        choices = children[1] if len(children) > 1 else ()
        return make_node(ast.TypeRef, span=self._span(meta), name=str(children[0]), choices=choices)

    def param(self, meta, children):
        name, type_ref = children[0], children[1]
        default = children[2] if len(children) > 2 else None
        return make_node(ast.Param, span=self._span(meta), name=str(name), type=type_ref,
                         default=default, name_span=self._tok(name))

    # ------------------------------------------------------------------ ops
    def override(self, meta, children):
        return True

    @staticmethod
    def _split_override(children):
        if children and children[0] is True:
            return True, children[1:]
        return False, children

    def target(self, meta, children):
        return (".".join(str(c) for c in children), self._span(meta))

    def arg_position(self, meta, children):
        position = int(children[0])
        element = None
        if len(children) > 1:
            element = "*" if children[1] == "*" else int(children[1])
        return ("position", position, element, None)

    def arg_every(self, meta, children):
        return ("position", ast.EVERY_NODE, "*", None)

    def arg_through(self, meta, children):
        return ("through", int(children[1]), None, str(children[0]))

    def role_binding(self, meta, children):
        role, (_, position, element, through) = children
        return make_node(ast.RoleBinding, span=self._span(meta), role=str(role), position=position,
                               element=element, through=through)

    def role_block(self, meta, children):
        return list(children)  # a list, so op_def can tell it from target tuples

    def op_def(self, meta, children):
        override, rest = self._split_override(children)
        name, rest = rest[0], rest[1:]
        roles = tuple(rest[-1]) if rest and isinstance(rest[-1], list) else ()
        targets = [r for r in rest if isinstance(r, tuple)]
        return make_node(ast.OpDef, span=self._span(meta), name=str(name),
                         targets=tuple(t for t, _ in targets),
                         target_spans=tuple(s for _, s in targets), roles=roles,
                         override=override, name_span=self._tok(name))

    def op_alias(self, meta, children):
        override, rest = self._split_override(children)
        name, members = rest[0], rest[1:]
        return make_node(ast.OpAlias, span=self._span(meta), name=str(name), override=override,
                           members=tuple(make_node(ast.OpRef, span=self._tok(m), name=str(m))
                                         for m in members),
                           name_span=self._tok(name))

    # ------------------------------------------------------------------ specs/configs
    def spec_def(self, meta, children):
        override, (name, value) = self._split_override(children)
        return make_node(ast.SpecDef, span=self._span(meta), name=str(name), value=value,
                           override=override, name_span=self._tok(name))

    def role_key(self, meta, children):
        first = next((c for c in children if isinstance(c, ast.FirstOf)), None)
        tokens = [c for c in children if isinstance(c, Token)]
        names = [c for c in tokens if c.type == "NAME"]
        index_tok = next((c for c in tokens if c.type in ("INT", "STAR")), None)
        index = first
        if index_tok is not None:
            index = "*" if index_tok.type == "STAR" else int(index_tok)
        step, role = (str(names[0]), str(names[1])) if len(names) == 2 else (None, str(names[0]))
        return make_node(ast.RoleKey, span=self._span(meta), step=step, role=role, index=index)

    def config_entry(self, meta, children):
        key, value = children
        return make_node(ast.ConfigEntry, span=self._span(meta), key=key, value=value)

    def config_body(self, meta, children):
        return make_node(ast.ConfigBody, span=self._span(meta), entries=tuple(children))

    def config_def(self, meta, children):
        override, (name, value) = self._split_override(children)
        return make_node(ast.ConfigDef, span=self._span(meta), name=str(name), value=value,
                             override=override, name_span=self._tok(name))

    # ------------------------------------------------------------------ rules
    def signed_int(self, meta, children):
        value = int(children[-1])
        return -value if len(children) == 2 else value

    def priority(self, meta, children):
        return ("priority", children[0])

    def condition(self, meta, children):
        return ("when", children[0])

    def rule(self, meta, children):
        override, rest = self._split_override(children)
        takes = scoped = None
        if rest and isinstance(rest[-1], _Scoped):
            scoped = tuple(rest[-1])
            rest = rest[:-1]
        if rest and isinstance(rest[-1], _Takes):
            takes = tuple(rest[-1])
            rest = rest[:-1]
        name, *options, pattern, config = rest
        opts = dict(options)
        return make_node(ast.Rule, span=self._span(meta), name=str(name), pattern=pattern,
                        config=config, priority=opts.get("priority", 0),
                        condition=opts.get("when"), override=override,
                        amend="amend" in opts, unmarked="unmarked" in opts,
                        unmarked_span=opts.get("unmarked"), takes=takes,
                        any_dtype="any_dtype" in opts, scoped=scoped,
                        name_span=self._tok(name))

    def takes(self, meta, children):
        return _Takes(children)

    def scoped(self, meta, children):
        return _Scoped(children)

    def amend(self, meta, children):
        return ("amend", True)

    def unmarked(self, meta, children):
        return ("unmarked", self._span(meta))

    def any_dtype(self, meta, children):
        return ("any_dtype", True)

    def op_ref(self, meta, children):
        return make_node(ast.OpRef, span=self._span(meta), name=str(children[0]))

    def region(self, meta, children):
        kind, selector = children
        return make_node(ast.Region, span=self._span(meta), selector_kind=str(kind),
                          selector=unquote(selector), kind_span=self._tok(kind))

    def predicate_block(self, meta, children):
        return tuple(children)

    def step_label(self, meta, children):
        return _Label(str(children[0]))

    def step(self, meta, children):
        atom, predicates, optional, label = children[0], (), False, None
        for child in children[1:]:
            if isinstance(child, _Label):
                label = str(child)
            elif isinstance(child, tuple):
                predicates = child
            else:
                optional = True
        if not predicates and not optional and label is None:
            return atom
        return make_node(ast.Step, span=self._span(meta), atom=atom, predicates=predicates,
                     optional=optional, label=label)

    def chain(self, meta, children):
        steps = tuple(c for c in children if not isinstance(c, Token))
        shared = tuple(str(c) == "~>" for c in children if isinstance(c, Token))
        return make_node(ast.Chain, span=self._span(meta), steps=steps,
                     shared=shared if any(shared) else ())

    def alternation(self, meta, children):
        return make_node(ast.Alternation, span=self._span(meta), options=tuple(children))

    # ------------------------------------------------------------------ blocks
    def block(self, meta, children):
        return tuple(children)

    def scope(self, meta, children):
        kind, selectors, *rest = children
        selectors = selectors if isinstance(selectors, list) else [selectors]
        condition = rest[0] if len(rest) == 2 else None
        return make_node(ast.Scope, span=self._span(meta), selector_kind=str(kind),
                         selectors=tuple(unquote(s) for s in selectors),
                         condition=condition, items=rest[-1],
                         selector_spans=tuple(self._tok(s) for s in selectors),
                         kind_span=self._tok(kind))

    def selector_list(self, meta, children):
        return list(children)

    def phase(self, meta, children):
        name, *mode, items = children
        mode_text, mode_span = mode[0] if mode else (None, None)
        return make_node(ast.Phase, span=self._span(meta), name=str(name), items=items,
                         name_span=self._tok(name), mode=mode_text, mode_span=mode_span)

    def phase_mode(self, meta, children):
        return " ".join(map(str, children)), self._span(meta)

    def when_block(self, meta, children):
        condition, items = children
        return make_node(ast.When, span=self._span(meta), condition=condition, items=items)

    def disable_rule(self, meta, children):
        return "rule"

    def disable_transform(self, meta, children):
        return "transform"

    def disable(self, meta, children):
        what, name = children
        return make_node(ast.Disable, span=self._span(meta), what=str(what), name=str(name),
                           name_span=self._tok(name))

    def transform_decl(self, meta, children):
        stage = children[-1] if isinstance(children[-1], _Stage) else None
        name, *rest = children[:-1] if stage is not None else children
        args, kwargs = rest[0] if rest else ((), ())
        return make_node(ast.Transform, span=self._span(meta), name=str(name), args=args,
                         kwargs=kwargs, name_span=self._tok(name),
                         stage=None if stage is None else stage.text,
                         stage_span=None if stage is None else stage.span)

    def transform_stage(self, meta, children):
        return _Stage(" ".join(str(word) for word in children), self._span(meta))

    def pattern_def(self, meta, children):
        name, pattern = children
        return make_node(ast.PatternDef, span=self._span(meta), name=str(name), pattern=pattern,
                     name_span=self._tok(name))

    def extend_rule(self, meta, children):
        name, pattern = children
        return make_node(ast.ExtendRule, span=self._span(meta), name=str(name),
                         pattern=pattern, name_span=self._tok(name))

    def annotation_decl(self, meta, children):
        name = children[0]
        return make_node(ast.AnnotationKind, span=self._span(meta), name=str(name),
                     name_span=self._tok(name))

    def scoping_decl(self, meta, children):
        mode = children[0]
        return make_node(ast.Scoping, span=self._span(meta), mode=str(mode),
                         mode_span=self._tok(mode))


@lru_cache(maxsize=1)
def rule_names() -> tuple[str, ...]:
    """The rules (and aliases) ``AstBuilder`` has a method for: its public methods."""
    return tuple(sorted({name for cls in AstBuilder.__mro__[:-1]
                         for name, value in vars(cls).items()
                         if not name.startswith("_") and callable(value)}))


def rule_methods(builder: AstBuilder) -> dict[str, Callable]:
    """Each rule's method, bound to ``builder``: what the driver calls."""
    return {name: getattr(builder, name) for name in rule_names()}
