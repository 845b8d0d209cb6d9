"""The one module that imports torchao and torch.export.

Everything PT2E-specific goes through here: spec objects, the Quantizer base class,
prepare/convert, export, the train/eval helpers. When these APIs move again, this
is the file to change.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import warnings
from typing import Any, Callable

os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")  # CPU-only: no .so noise

import torch  # noqa: E402

# Importing torchao logs a "skipping cpp extensions" warning (we asked for that) and
# makes torch's pytree log a deprecation; neither is the user's business.
_NOISY_LOGGERS = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
_levels = [logger.level for logger in _NOISY_LOGGERS]
for _logger in _NOISY_LOGGERS:
    _logger.setLevel(logging.ERROR)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")

    from torchao.quantization.pt2e.export_utils import (  # noqa: E402
        _allow_exported_model_train_eval as allow_exported_model_train_eval,
    )
    from torchao.quantization.pt2e.export_utils import (  # noqa: E402
        _move_exported_model_to_eval as move_exported_model_to_eval,
    )
    from torchao.quantization.pt2e.export_utils import (  # noqa: E402
        _move_exported_model_to_train as move_exported_model_to_train,
    )
    from torchao.quantization.pt2e.export_utils import (  # noqa: E402
        model_is_exported,
    )
    from torchao.quantization.pt2e.quantize_pt2e import (  # noqa: E402
        convert_pt2e,
        prepare_pt2e,
        prepare_qat_pt2e,
    )
    from torchao.quantization.pt2e.utils import _fuse_conv_bn_, _fuse_linear_bn_  # noqa: E402
    from torchao.quantization.pt2e.quantizer import (  # noqa: E402
        ComposableQuantizer,
        DerivedQuantizationSpec,
        FixedQParamsQuantizationSpec,
        QuantizationAnnotation,
        QuantizationSpec,
        Quantizer,
        SharedQuantizationSpec,
    )
    # The node.meta key torchao's prepare reads annotations from.
    from torchao.quantization.pt2e.quantizer.quantizer import (  # noqa: E402
        Q_ANNOTATION_KEY as ANNOTATION_KEY,
    )

for _logger, _level in zip(_NOISY_LOGGERS, _levels):
    _logger.setLevel(_level)

from qrules.semantics import registry  # noqa: E402
from qrules.semantics.values import ObserverRef, SpecValue  # noqa: E402
from qrules.errors import AnnotationWarning  # noqa: E402

__all__ = [
    "ComposableQuantizer", "Quantizer", "QuantizationAnnotation", "QuantizationSpec",
    "SharedQuantizationSpec", "DerivedQuantizationSpec", "FixedQParamsQuantizationSpec",
    "prepare_pt2e", "prepare_qat_pt2e", "convert_pt2e", "move_exported_model_to_eval",
    "move_exported_model_to_train", "allow_exported_model_train_eval", "model_is_exported",
    "export_module", "SpecBuilder", "resolve_entry", "ANNOTATION_KEY",
]


def export_module(model: torch.nn.Module, example_inputs: tuple, *, strict: bool = False):
    """Capture a model as torch.export does for PT2E: ``export(...).module()``."""
    return torch.export.export(model, tuple(example_inputs), strict=strict).module()


def fold_batch_norms(model):
    """What ``prepare_pt2e`` does to a graph before it annotates (PTQ only): fold
    batch norms into the convs and linears before them. Explain uses it so it sees
    the graph the quantizer will see."""
    _fuse_conv_bn_(model)
    _fuse_linear_bn_(model)
    return model


def resolve_entry(entry: registry.Entry) -> Any:
    """A registry entry's implementation (see ``resolve_target``)."""
    return resolve_target(entry.target)


def resolve_target(target: Any) -> Any:
    """What a registry names: built-ins name a fixed ``module:attr`` of torchao or
    qrules; entries registered from Python carry the object itself."""
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    if not (module_name.startswith("torchao.") or module_name.startswith("qrules.")):
        raise ValueError(f"refusing to import {target!r}: built-in registry entries "
                         "point into torchao or qrules only")
    return getattr(importlib.import_module(module_name), attr)


_DTYPES = {"int8": torch.int8, "uint8": torch.uint8, "int16": torch.int16,
           "uint16": getattr(torch, "uint16", None), "int32": torch.int32,
           "float8_e4m3fn": torch.float8_e4m3fn, "float8_e5m2": torch.float8_e5m2,
           "int4": getattr(torch, "int4", None), "int2": getattr(torch, "int2", None)}


def torch_dtype(name: str) -> torch.dtype:
    dtype = _DTYPES.get(name)
    if dtype is None:
        raise ValueError(f"dtype {name} is not available in torch {torch.__version__}")
    return dtype


#: Keyword arguments of observers whose values a rule file writes as names: torch's
#: quantized dtypes and qschemes, looked up in these lists only.
_TORCH_NAMED_KWARGS = {
    "dtype": ("qint8", "quint8", "qint32", "int8", "uint8", "int16", "int32"),
    "qscheme": ("per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
                "per_channel_symmetric", "per_channel_affine_float_qparams"),
}


def observer_ctor(ref: ObserverRef, spec: Any = None, node: Any = None) -> Callable:
    """The constructor ``ref`` names, with the keywords the rule wrote, plus what its
    registry entry ``wants`` from ``spec`` (its fields) and ``node`` (the annotated node)."""
    entry = registry.OBSERVERS[ref.name]
    cls = resolve_entry(entry)
    kwargs = {}
    for key, value in ref.kwargs:
        if isinstance(value, ObserverRef):
            value = observer_ctor(value, spec, node)
        elif key in _TORCH_NAMED_KWARGS and isinstance(value, str):
            if value not in _TORCH_NAMED_KWARGS[key]:
                raise ValueError(f"observer {ref.name}: {key}={value!r} is not one of "
                                 f"{', '.join(_TORCH_NAMED_KWARGS[key])}")
            value = getattr(torch, value)
        kwargs[key] = value
    kwargs.update(_wanted(ref.name, entry.extra.get("wants", ()), spec, node))
    return cls.with_args(**kwargs) if kwargs else cls


def _wanted(name: str, wants: tuple, spec: Any, node: Any) -> dict:
    if not wants:
        return {}
    known: dict = {}
    if spec is not None:
        known.update(spec.torchao_range(_Torchao), ch_axis=getattr(spec, "ch_axis", None))
        if getattr(spec, "block_size", None) is not None:
            known["block_size"] = spec.block_size
    if node is not None:
        known.update(graph=node.graph, node_name=node.name)
    missing = [w for w in wants if w not in known]
    if missing:
        raise ValueError(f"observer {name} needs {', '.join(missing)}: "
                         + ("a `per_block` spec" if "block_size" in missing else
                            "the node it is built for"))
    return {w: known[w] for w in wants}


def _wants_node(ref: Any) -> bool:
    """Whether an observer (or one it wraps) is built per node: it wants the node."""
    if not isinstance(ref, ObserverRef):
        return False
    wants = registry.OBSERVERS[ref.name].extra.get("wants", ())
    return bool({"graph", "node_name"} & set(wants)) or any(
        _wants_node(value) for _, value in ref.kwargs)


class _Torchao:
    """What a spec value builds its torchao spec with (``SpecValue.to_torchao``)."""

    QuantizationSpec = QuantizationSpec
    FixedQParamsQuantizationSpec = FixedQParamsQuantizationSpec
    DerivedQuantizationSpec = DerivedQuantizationSpec
    SharedQuantizationSpec = SharedQuantizationSpec
    torch_dtype = staticmethod(torch_dtype)

    def __init__(self, node: Any = None):
        self.node = node

    def observer_ctor(self, ref: ObserverRef, spec: Any = None) -> Callable:
        return observer_ctor(ref, spec, self.node)

    @staticmethod
    def qscheme(name: str):
        return getattr(torch, name)

    @staticmethod
    def derive_fn(name: str, kwargs: dict) -> Callable:
        function = resolve_entry(registry.DERIVE_FUNCTIONS[name])
        return functools.partial(function, **kwargs) if kwargs else function


class SpecBuilder:
    """qrules spec values -> torchao spec objects, one object per distinct value, so
    equal specs compare equal and torchao can share observers between them."""

    def __init__(self):
        self._cache: dict[Any, Any] = {}
        self._factory = _Torchao()   # for specs built without their node

    @staticmethod
    def per_node(spec: SpecValue) -> bool:
        """Whether the spec is built for each node: it names graph edges, or its
        observer wants the node (a vendor observer given the graph and node name)."""
        return bool(spec.refs) or _wants_node(getattr(spec, "observer", None))

    def build(self, spec: SpecValue, refs: tuple = (), node: Any = None):
        if self.per_node(spec):  # one object per placement
            return spec.to_torchao(self._factory if node is None else _Torchao(node), refs)
        key = spec.value_key()
        if key not in self._cache:
            self._cache[key] = spec.to_torchao(_Torchao())
        return self._cache[key]


def forget_prepared_models() -> None:
    """Drop torchao's cache of the models prepare/convert have seen.

    torchao's ``_assert_and_get_unique_device(module)`` and torch.ao's
    ``assert_and_get_unique_device`` (which torchao's convert reaches) are
    ``functools.cache``d, keyed by the module: every model ``prepare_pt2e`` or
    ``convert_pt2e`` was given stays alive for good (about 1 GB per vit_b_16
    comparison; the equivalence suite grew to 16 GB). Whoever discards those models
    calls this; the caches refill on demand."""
    from torch.ao.quantization.fx import utils as fx_utils
    from torchao import utils

    for cached in (getattr(utils, "_assert_and_get_unique_device", None),
                   getattr(fx_utils, "assert_and_get_unique_device", None)):
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


def quiet_torchao():
    """A context in which torchao's deprecation and user warnings stay quiet (qrules'
    own AnnotationWarning, raised inside prepare's annotate, still shows)."""
    context = warnings.catch_warnings()

    class _Quiet:
        def __enter__(self):
            context.__enter__()
            warnings.simplefilter("ignore")
            warnings.filterwarnings("default", category=AnnotationWarning)

        def __exit__(self, *exc):
            return context.__exit__(*exc)

    return _Quiet()


