"""Network graphs for the web visualizer, including a best-effort graph of a network that fails to analyze."""

from __future__ import annotations

from digits.model.caffe.analysis import LayerSpec, NetworkSpec, RefusedLayerError, analyze_message
from digits.model.caffe.errors import CaffeError, NetworkError
from digits.model.caffe.shapes import SOURCE_TYPES
from digits.model.caffe.textformat import Message, parse
from digits.model.caffe.upgrade import upgrade_net


def _node(layer: LayerSpec) -> dict:
    return {
        "name": layer.name,
        "type": layer.type,
        "bottoms": list(layer.bottoms),
        "tops": list(layer.tops),
        "output_shapes": {top: list(shape) for top, shape in layer.output_shapes.items()},
        "param_count": layer.param_count,
        "line": layer.line,
    }


def _graph(name: str, stage: str, nodes: list[dict], data_blob: str, input_shape: tuple | None) -> dict:
    """Edges join each node to the last earlier node that wrote each of its bottoms. Caffe allows two layers
    of one name: the later ones carry an "id" ("name#2") that edges use in place of the name."""
    writer: dict[str, str] = {}
    edges = []
    seen: dict[str, int] = {}
    if not any(node["type"] in SOURCE_TYPES for node in nodes):
        # Deploy nets get their input from outside; show it as a node so the graph has a root.
        source = {
            "name": data_blob,
            "type": "Input",
            "bottoms": [],
            "tops": [data_blob],
            "output_shapes": {data_blob: list(input_shape)} if input_shape is not None else {},
            "param_count": 0,
            "line": None,
        }
        nodes = [source, *nodes]
    for node in nodes:
        seen[node["name"]] = seen.get(node["name"], 0) + 1
        if seen[node["name"]] > 1:
            node["id"] = f"{node['name']}#{seen[node['name']]}"
        key = node.get("id", node["name"])
        for bottom in node["bottoms"]:
            if bottom in writer:
                edges.append({"from": writer[bottom], "to": key, "blob": bottom})
        for top in node["tops"]:
            writer[top] = key
    return {"name": name, "stage": stage, "nodes": nodes, "edges": edges}


def network_graph(spec: NetworkSpec) -> dict:
    """Nodes (layer name, type, output shapes, param count) and edges (blob from layer to layer), JSON-ready."""
    graph = _graph(spec.name, spec.stage, [_node(layer) for layer in spec.layers], spec.data_blob, spec.input_shape)
    graph["total_params"] = spec.total_params
    graph["output_blob"] = spec.output_blob
    graph["input_shape"] = list(spec.input_shape)
    graph["warnings"] = list(spec.notices)
    return graph


def analyze_for_display(
    text: str,
    stage: str,
    input_shape: tuple[int, ...] | None,
    num_classes: int,
    default_input: tuple[int, ...] | None = None,
) -> dict:
    """The graph of `stage`, with "warnings" (what was upgraded or assumed); never raises. On error, the graph
    of the layers that did analyze, the faulty layer as a node marked "error": true, and
    {"error": {"message", "layer", "line", "column", "refused"}} ("refused": a layer type DIGITS will not build).
    `input_shape` None: the input the network declares, else `default_input`; `num_classes` 0: unknown.
    """
    done: list[LayerSpec] = []
    try:
        net = parse(text)
    except CaffeError as err:
        return {"name": "", "stage": stage, "nodes": [], "edges": [], "warnings": [], "error": _describe(err)}
    name = str(net.first("name", "")) if isinstance(net.first("name", ""), str) else ""
    notices: list[str] = []
    try:
        notices = upgrade_net(net)
        spec = analyze_message(
            net,
            stage=stage,
            input_shape=input_shape,
            num_classes=num_classes,
            progress=done,
            default_input=default_input,
            trainable=False,
        )
    except Exception as err:  # noqa: BLE001 - the web page must always get a graph and a message
        error = _describe(err)
        nodes = [_node(layer) for layer in done]
        if error["layer"] and error["layer"] not in {layer.name for layer in done}:
            nodes.append(_faulty_node(net, error["layer"]))
        for node in nodes:
            if node["name"] == error["layer"]:
                node["error"] = True
        graph = _graph(name, stage, nodes, _data_blob(done), _shown_input(done, input_shape, default_input))
        graph["warnings"] = notices
        graph["error"] = error
        return graph
    graph = network_graph(spec)
    graph["warnings"] = [*notices, *graph["warnings"]]
    return graph


def _shown_input(done: list[LayerSpec], given: tuple | None, default: tuple | None) -> tuple | None:
    if given is not None:
        return tuple(given)
    for layer in done:
        if layer.type in SOURCE_TYPES and layer.tops:
            return layer.output_shapes[layer.tops[0]]
    return tuple(default) if default is not None else None


def _data_blob(done: list[LayerSpec]) -> str:
    for layer in done:
        if layer.type in SOURCE_TYPES and layer.tops:
            return layer.tops[0]
    return "data"


def _faulty_node(net: Message, layer_name: str) -> dict:
    for layer in net.get("layer", []):
        if layer.first("name") == layer_name:
            bottoms = [str(b) for b in layer.get("bottom", [])]
            tops = [str(t) for t in layer.get("top", [])]
            return {
                "name": layer_name,
                "type": str(layer.first("type", "")),
                "bottoms": bottoms,
                "tops": tops,
                "output_shapes": {},
                "param_count": 0,
                "line": layer.line,
            }
    return {"name": layer_name, "type": "", "bottoms": [], "tops": [], "output_shapes": {}, "param_count": 0}


def _describe(err: Exception) -> dict:
    if isinstance(err, CaffeError):
        layer = err.layer if isinstance(err, NetworkError) else None
        return {
            "message": err.message,
            "layer": layer,
            "line": err.line,
            "column": err.column,
            "refused": isinstance(err, RefusedLayerError),
        }
    return {"message": f"{type(err).__name__}: {err}", "layer": None, "line": None, "column": None, "refused": False}
