"""The standalone `predict.py` of a model download, built from DIGITS' own preprocessing source (torch-free).

predict.py needs only torch, numpy and Pillow. So that it reads an image exactly as the server does, the
functions that do it are not copied by hand: `build_predict_script()` carries their source text, as it is in
this checkout, out of `digits.formats.images` (open, orient, convert, resize by DIGITS' resize modes) and
`digits.engine.augment` (BatchTransform: mean, center crop, input scale), together with every top-level name
they use. The source is read with `ast` rather than `inspect.getsource`, because importing
`digits.engine.augment` would import torch, which the web process never does.

The mean is read from mean.binaryproto by a small protobuf wire-format reader in the template, so the archive
keeps DIGITS' (and Caffe's) files and needs no protobuf package.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import sys

from digits import __version__

MARKER = "# @@CARRIED_FROM_DIGITS@@\n"
# What predict.py may import; anything else the carried code needs makes generation fail, loudly.
ALLOWED_PACKAGES = frozenset({"numpy", "PIL", "torch"})
# What the template's own code imports (merged with the carried source's imports).
TEMPLATE_IMPORTS = ("import argparse", "import json", "import os", "import sys", "import numpy as np", "import torch")
# (module, the names predict.py calls, decorators whose functions are reached through a registry)
CARRIED = (
    ("digits.formats.images", ("ImageError", "load_for_network"), ("register_resize_mode",)),
    ("digits.engine.augment", ("BatchTransform",), ()),
)


class CarryError(RuntimeError):
    """Source that predict.py cannot carry (it needs something other than the standard library, numpy,
    Pillow or torch)."""


def _module_source(module: str) -> tuple[str, str]:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise CarryError(f"cannot find the source of {module}")
    with open(spec.origin, encoding="utf-8") as fh:
        return fh.read(), spec.origin


def _decorator_name(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    return target.id if isinstance(target, ast.Name) else None


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _is_setting(node: ast.stmt) -> bool:
    """A top-level assignment to a library's attribute (e.g. Pillow's MAX_IMAGE_PIXELS): it changes how the
    carried functions behave, so it goes along."""
    return isinstance(node, ast.Assign) and all(isinstance(t, ast.Attribute) for t in node.targets)


def _segment(lines: list[str], node: ast.stmt) -> str:
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return "".join(lines[first - 1 : node.end_lineno])


def _imports(tree: ast.Module, module: str) -> dict[str, str]:
    """Each name a module imports -> the import statement that binds it alone."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                out[bound] = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module == "__future__":
                if node.level:
                    out.update({a.asname or a.name: f"<relative import in {module}>" for a in node.names})
                continue
            for alias in node.names:
                out[alias.asname or alias.name] = f"from {node.module} import {alias.name}" + (
                    f" as {alias.asname}" if alias.asname else ""
                )
    return out


def _allowed(statement: str) -> bool:
    if statement.startswith("<"):
        return False
    root = statement.split()[1].split(".")[0]
    return root in ALLOWED_PACKAGES or root in sys.stdlib_module_names


def carry(module: str, roots: tuple[str, ...], registries: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """The imports and the source (in the module's order) of `roots`, of the functions registered with one of
    `registries`, and of every top-level name they use, transitively."""
    source, path = _module_source(module)
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    defs: dict[str, ast.stmt] = {}
    for node in tree.body:
        for name in _defined_names(node):
            defs[name] = node
    imports = _imports(tree, module)
    wanted = list(roots)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(_decorator_name(d) in registries for d in node.decorator_list):
            wanted.append(node.name)
    settings = [node for node in tree.body if _is_setting(node)]
    for node in settings:
        wanted.extend(_used_names(node))
    chosen: set[int] = {id(node) for node in settings}
    needed_imports: set[str] = set()
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in imports:
            if not _allowed(imports[name]):
                raise CarryError(f"{path}: {name} ({imports[name]}) cannot be carried into predict.py")
            needed_imports.add(imports[name])
        elif name in defs:
            if id(defs[name]) not in chosen:
                chosen.add(id(defs[name]))
                wanted.extend(_used_names(defs[name]))
        elif name in roots:
            raise CarryError(f"{module} defines no {name}")
    body = "".join(_segment(lines, node) + "\n\n" for node in tree.body if id(node) in chosen)
    return sorted(needed_imports), body


@functools.lru_cache(maxsize=1)
def build_predict_script() -> str:
    """predict.py's text: the template with DIGITS' preprocessing source carried into it."""
    imports: set[str] = set(TEMPLATE_IMPORTS)
    sections, names = [], {}
    for module, roots, registries in CARRIED:
        module_imports, body = carry(module, roots, registries)
        for name in _defined_names_in(body):
            if name in names:
                raise CarryError(f"{name} is defined by both {names[name]} and {module}")
            names[name] = module
        imports.update(module_imports)
        sections.append(f"# ---- carried from {module} ----\n\n\n{body}")
    carried = _import_block(imports) + "\n" + "".join(sections) + "# ---- end of the carried source ----\n"
    return TEMPLATE.replace("@@VERSION@@", __version__).replace(MARKER, carried)


def _import_block(statements: set[str]) -> str:
    """Import statements as isort writes them: the standard library, then the rest; `import` before `from`."""
    groups: list[list[str]] = [[], []]
    froms: dict[str, list[str]] = {}
    for statement in statements:
        words = statement.split()
        if words[0] == "from":
            froms.setdefault(words[1], []).append(" ".join(words[3:]))
        else:
            groups[words[1].split(".")[0] in ALLOWED_PACKAGES].append(statement)
    for module, names in froms.items():
        groups[module.split(".")[0] in ALLOWED_PACKAGES].append(f"from {module} import {', '.join(sorted(names))}")

    def key(statement: str) -> tuple[bool, str]:
        return statement.startswith("from"), statement.split()[1].lower()

    return "\n\n".join("\n".join(sorted(group, key=key)) for group in groups if group) + "\n"


def _defined_names_in(body: str) -> list[str]:
    return [name for node in ast.parse(body).body for name in _defined_names(node)]


TEMPLATE = '''\
#!/usr/bin/env python3
"""Classify images with the DIGITS model in this folder (model.ts, info.json, mean.binaryproto).

    python predict.py IMAGE [IMAGE ...]          the top 5 labels of each image, with their probability
    python predict.py --json IMAGE [IMAGE ...]   the same as JSON
    python predict.py --help                     more options

or from Python, with this folder on the path:

    import predict
    predict.predict(["cat.jpg"])    # [[("cat", 0.93), ("dog", 0.05), ...]], most probable first

Needs Python 3.10+, torch, numpy and Pillow; not DIGITS. Images are read exactly as the DIGITS server read
them (orientation, color mode, resize mode, mean, crop, scale): the carried section below is DIGITS' own
source, copied from DIGITS @@VERSION@@ when this file was made. Please do not edit it.
"""

from __future__ import annotations

# @@CARRIED_FROM_DIGITS@@

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH_SIZE = 32


# ---- mean.binaryproto: Caffe's BlobProto, read with a minimal protobuf wire-format reader ----


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of each field of a message; length-delimited values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def read_mean(path: str) -> np.ndarray:
    """mean.binaryproto as an H x W x C float32 array, RGB (the file holds 1 x C x H x W, BGR)."""
    with open(path, "rb") as fh:
        buf = fh.read()
    sizes, dims, floats, doubles = {}, [], [], []
    for number, wire, value in _fields(buf):
        if number in (1, 2, 3, 4) and wire == 0:  # num, channels, height, width
            sizes[number] = value
        elif number == 5:  # data: packed (wire type 2) or one float (5)
            floats.append(np.frombuffer(value, dtype="<f4"))
        elif number == 8:  # double_data
            doubles.append(np.frombuffer(value, dtype="<f8"))
        elif number == 7 and wire == 2:  # shape { dim }
            for inner, inner_wire, dim in _fields(value):
                if inner == 1 and inner_wire == 2:
                    pos = 0
                    while pos < len(dim):
                        d, pos = _varint(dim, pos)
                        dims.append(d)
                elif inner == 1:
                    dims.append(dim)
    channels, height, width = dims[-3:] if dims else (sizes.get(2, 0), sizes.get(3, 0), sizes.get(4, 0))
    data = np.concatenate(floats or doubles or [np.zeros(0, dtype="<f4")]).astype(np.float32)
    chw = data.reshape(channels, height, width)
    if channels == 3:
        chw = chw[::-1]
    return np.ascontiguousarray(chw.transpose(1, 2, 0))


# ---- the model ----


class Classifier:
    """The model of a folder, ready to classify image files."""

    def __init__(self, folder: str = HERE, device: str = "cpu"):
        with open(os.path.join(folder, "info.json"), encoding="utf-8") as fh:
            self.info = info = json.load(fh)
        self.labels = list(info["labels"])
        image = info["image"]
        self.channels, self.height, self.width = int(image["channels"]), int(image["height"]), int(image["width"])
        self.resize_mode = image.get("resize_mode") or "squash"
        mean = None
        if info.get("use_mean", "none") != "none":
            mean = torch.from_numpy(read_mean(os.path.join(folder, "mean.binaryproto"))).permute(2, 0, 1).contiguous()
            if info["use_mean"] == "pixel":
                mean = mean.mean(dim=(1, 2), keepdim=True)
        # The transform DIGITS validates with: (pixels - mean), center crop, * input scale.
        self.transform = BatchTransform(
            in_shape=(self.channels, self.height, self.width),
            mean=mean,
            crop=info.get("crop_size"),
            scale=float(info.get("input_scale", 1.0)),
            mirror=False,
            aug={"whitening": bool(info.get("whitening"))},
            train=False,
        ).to(device)
        self.device = torch.device(device)
        self.model = torch.jit.load(os.path.join(folder, "model.ts"), map_location=self.device).eval()

    def read(self, path: str) -> np.ndarray:
        """An image file as the network's dataset stored it: H x W x C uint8 (raises ImageError)."""
        return load_for_network(path, self.channels, self.height, self.width, self.resize_mode)[0]

    @torch.no_grad()
    def predict_arrays(self, arrays: list[np.ndarray]) -> list[list[tuple[str, float]]]:
        """(label, probability) of every label for each H x W x C uint8 image, most probable first.

        A network with more outputs than labels: the softmax is over all its outputs, and the outputs without a
        label are left out (as the server does)."""
        if not arrays:
            return []
        batch = torch.from_numpy(np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))).to(self.device)
        probs = torch.softmax(self.model(self.transform(batch)).float(), dim=1)[:, : len(self.labels)].cpu()
        return [sorted(zip(self.labels, row, strict=True), key=lambda lp: -lp[1]) for row in probs.tolist()]

    def predict(self, paths: list[str], batch_size: int = BATCH_SIZE) -> list[list[tuple[str, float]]]:
        """(label, probability) of every label for each image file, most probable first."""
        out = []
        for start in range(0, len(paths), batch_size):
            out.extend(self.predict_arrays([self.read(p) for p in paths[start : start + batch_size]]))
        return out


_default: Classifier | None = None


def predict(paths: list[str]) -> list[list[tuple[str, float]]]:
    """Classify image files with the model next to this file: for each, [(label, probability)], best first."""
    global _default
    if _default is None:
        _default = Classifier()
    return _default.predict(list(paths))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Classify images with the DIGITS model in this folder.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--top", type=int, default=5, help="how many labels to show per image (default 5)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--model-dir", default=HERE, help="the folder with model.ts and info.json (default: here)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    args = p.parse_args(argv)
    classifier = Classifier(args.model_dir, args.device)
    results, failed = [], 0
    for start in range(0, len(args.images), args.batch_size):
        chunk, arrays, errors = args.images[start : start + args.batch_size], [], {}
        for path in chunk:
            try:
                arrays.append(classifier.read(path))
            except (ImageError, OSError) as e:
                errors[path] = str(e)
        predictions = iter(classifier.predict_arrays(arrays))
        for path in chunk:
            if path in errors:
                failed += 1
                result = {"path": path, "error": errors[path]}
            else:
                result = {"path": path, "predictions": [list(lp) for lp in next(predictions)[: args.top]]}
            if args.json:
                results.append(result)
            else:
                _print_result(result)
    if args.json:
        print(json.dumps(results, indent=1))
    return 1 if failed else 0


def _print_result(result: dict) -> None:
    if "error" in result:
        print(f"{result['path']}: error: {result['error']}", file=sys.stderr)
        return
    print(result["path"])
    width = max(len(label) for label, _ in result["predictions"])
    for label, probability in result["predictions"]:
        print(f"  {label:<{width}}  {100 * probability:6.2f}%")


if __name__ == "__main__":
    sys.exit(main())
'''
