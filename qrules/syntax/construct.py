"""AST nodes without validation: exactly what pydantic's ``model_construct`` makes
(the same ``__dict__``, in field order, and the same fields set), made faster.

pydantic's generic ``model_construct`` looks at every field's aliases on every call,
a third of the time a parse spent making nodes; here each class gets a table once: a
dict of its fields in order with their defaults, which a node's fields update.
"""

from __future__ import annotations

from functools import lru_cache

_new = object.__new__
_setattr = object.__setattr__
_IMMUTABLE = (str, int, float, bool, type(None))


def construct(cls, fields: dict):
    """``cls.model_construct(**fields)``; ``fields`` becomes the node's ``__dict__``
    when it holds every field in order (it is the caller's fresh keyword dict)."""
    order, defaults, required = _plan(cls)
    values = defaults.copy()  # every field in order: a default or a placeholder
    values.update(fields)
    given = set(fields)
    if len(values) != len(order) or not given >= required:
        # An unknown name or a missing required field: do what model_construct does.
        values = {name: fields[name] if name in fields else defaults[name]
                  for name in order if name in fields or name not in required}
        given &= defaults.keys()
    node = _new(cls)
    _setattr(node, "__dict__", values)
    _setattr(node, "__pydantic_fields_set__", given)
    _setattr(node, "__pydantic_extra__", None)
    _setattr(node, "__pydantic_private__", None)
    return node


def construct_all(cls, values: dict):
    """``construct`` when ``values`` holds every field, in field order (a span: the
    parser makes one per node): the same node, without merging defaults."""
    node = _new(cls)
    _setattr(node, "__dict__", values)
    _setattr(node, "__pydantic_fields_set__", set(values))
    _setattr(node, "__pydantic_extra__", None)
    _setattr(node, "__pydantic_private__", None)
    return node


@lru_cache(maxsize=None)
def _plan(cls) -> tuple[tuple[str, ...], dict, frozenset]:
    """A node class's fields in order; each field's default (None as a placeholder for
    a required one), in field order; the required fields. Every default is an
    immutable constant (pydantic would copy anything else per instance): checked."""
    fields = cls.__pydantic_fields__
    defaults = {name: None if field.is_required() else field.get_default(
        call_default_factory=True) for name, field in fields.items()}
    required = frozenset(name for name, field in fields.items() if field.is_required())
    bad = [name for name, value in defaults.items()
           if not (isinstance(value, _IMMUTABLE) or value == ())]
    if bad or cls.__pydantic_post_init__ or cls.model_config.get("extra") == "allow":
        raise TypeError(f"cannot construct {cls.__name__} without validation ({bad})")
    return tuple(fields), defaults, required
