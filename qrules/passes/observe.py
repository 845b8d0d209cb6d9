"""Insert observer / fake-quant modules where an annotated graph asks for them.

Pre: an annotated GraphModule and torchao's map from each quantized edge
``(producer, user)`` or node output to its observer instance (one instance per sharing
group). Post: the graph torchao's ``prepare`` makes, node for node: each observer is a
``call_module`` on ``activation_post_process_N`` right after the value it observes,
input observers before output observers in graph order, an instance already observing a
value reused instead of inserted twice, users of an observed output rewired to the
observer.

What differs is the cost. torchao names each observer by scanning ``hasattr(model,
"activation_post_process_" + str(i))`` from 0 and asks every parameter for its device
on every insertion: quadratic in the number of observers (21 of the 23 s of a
10k-node prepare). The free index only grows, so a counter gives the same names.

Pure graph pass: torch.fx only; what is torchao's (which modules are observers, which
edges are in-place buffer writes) comes in as callables from the adapter.
"""

from __future__ import annotations

from typing import Any, Callable

_PREFIX = "activation_post_process_"


class _Namer:
    """The names torchao's ``get_new_attr_name_with_prefix`` would pick, in O(1) each."""

    def __init__(self, model):
        self.model = model
        self.index = 0

    def __call__(self) -> str:
        while hasattr(self.model, _PREFIX + str(self.index)):
            self.index += 1
        name = _PREFIX + str(self.index)
        self.index += 1
        return name


def _reject_node_kwargs(name: str, value: Any, node_type) -> None:
    """torchao refuses tensors passed by keyword: they would silently stay float."""
    if isinstance(value, node_type):
        raise AssertionError(f"Kwarg '{name}' contained type {type(value)} which is not "
                             "supported for annotation.")
    if isinstance(value, (tuple, list)):
        for item in value:
            _reject_node_kwargs(name, item, node_type)
    if isinstance(value, dict):
        for item in value.values():
            _reject_node_kwargs(name, item, node_type)


class _Inserter:
    def __init__(self, model, obs_map: dict, is_observer: Callable, skip_input: Callable,
                 device):
        self.model = model
        self.graph = model.graph
        self.obs_map = obs_map
        self.is_observer_module = is_observer
        self.skip_input = skip_input
        self.device = device
        self.named_modules = dict(model.named_modules(remove_duplicate=False))
        self.name = _Namer(model)

    def is_observer(self, node) -> bool:
        return (node.op == "call_module"
                and self.is_observer_module(self.named_modules.get(str(node.target))))

    def insert(self, node, observer):
        if self.device is not None:
            observer.to(self.device)
        name = self.name()
        setattr(self.model, name, observer)
        self.named_modules[name] = observer
        with self.graph.inserting_after(node):
            return self.graph.create_node("call_module", name, (node,), {})

    def input_arg(self, node, arg):
        """``arg`` of ``node``, observed if its edge asks for it (lists: each item)."""
        from torch.fx import Node

        if isinstance(arg, (list, tuple)):
            return type(arg)([self.input_arg(node, item) for item in arg])
        if not isinstance(arg, Node):
            return arg
        original = arg
        while self.is_observer(original):
            original = original.args[0]
        observer = self.obs_map.get((original, node))
        if observer is None or self.skip_input(node, original):
            return arg
        if self.obs_map.get(original) is observer:
            return arg  # the producer's output observer is this very instance
        for user in arg.users:
            if self.is_observer(user) and self.named_modules[user.target] is observer:
                return user  # another user's edge already inserted this instance
        return self.insert(arg, observer)

    def observe(self, node, annotation_key: str, has_tensor_output: Callable) -> None:
        from torch.fx import Node

        if node.meta.get(annotation_key) is None:
            return
        node.args = tuple(self.input_arg(node, arg) for arg in node.args)
        for name, value in node.kwargs.items():
            _reject_node_kwargs(name, value, Node)
        if not has_tensor_output(node) or node not in self.obs_map:
            return
        observer_node = self.insert(node, self.obs_map[node])
        if "from_node" in node.meta:  # torchao's numeric-debugger handle
            observer_node.meta["from_node"] = node.meta["from_node"]
        for user in list(node.users):
            if user is not observer_node:
                user.replace_input_with(node, observer_node)


def insert_observers(model, obs_map: dict, *, annotation_key: str, is_observer: Callable,
                     skip_input: Callable, has_tensor_output: Callable, device) -> None:
    """Insert the observers of ``obs_map`` into ``model`` (in place), in torchao's order:
    the graph's nodes as they were before insertion, inputs before outputs."""
    inserter = _Inserter(model, obs_map, is_observer, skip_input, device)
    for node in list(model.graph.nodes):
        inserter.observe(node, annotation_key, has_tensor_output)
