"""What one quantizer keeps from one ``annotate`` to the next: the torchao spec objects
of the specs that name no edge, built once (as a torchao quantizer keeps its config's),
never a spec tied to one graph's edges."""

import warnings

import qrules


def _annotations(gm) -> dict:
    return {node.name: node.meta["quantization_annotation"] for node in gm.graph.nodes
            if "quantization_annotation" in node.meta}


def test_specs_naming_no_edge_are_one_object_across_calls(exported):
    from torchao.quantization.pt2e.quantizer import SharedQuantizationSpec

    quantizer = qrules.load("xnnpack", flavor="torchao", per_channel=True).quantizer()
    graphs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2):
            gm, _ = exported("conv_linear")   # conv -> relu -> max_pool -> ... -> linear
            graphs.append(quantizer.annotate(quantizer.transform_for_annotation(gm)))
    first, second = map(_annotations, graphs)
    assert first.keys() == second.keys()
    kept = per_graph = 0
    for name, annotation in first.items():
        other = second[name]
        mine = [*annotation.input_qspec_map.values(), annotation.output_qspec]
        theirs = [*other.input_qspec_map.values(), other.output_qspec]
        assert len(mine) == len(theirs), name
        for spec, again in zip(mine, theirs):
            if spec is None:
                assert again is None, name
            elif isinstance(spec, SharedQuantizationSpec):
                # max_pool2d shares its producer's observer: each graph's own edge.
                assert again is not spec and again.edge_or_node != spec.edge_or_node, name
                per_graph += 1
            else:
                assert again is spec, name
                kept += 1
    assert kept and per_graph
