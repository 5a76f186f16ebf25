"""`gridwatch models quantize NAME --calibration DIR`: ONNX Runtime static int8 quantisation on real frames.

QDQ format, per-channel int8 weights, uint8 activations (the U8S8 kernels that use VNNI on x86), MinMax
calibration over frames preprocessed exactly as at run time, after `quant_pre_process` (shape inference and
graph optimisation); an ultralytics head's decoding (DFL, boxes, class sigmoid, output concat) stays
fp32. Two exact graph changes make it faster: a 3x3 stride-2 stem conv becomes SpaceToDepth on the uint8
input + a 2x2 conv, and each Concat / Add shares one scale with its inputs (no requantising). The input is
quantised with the scale of one pixel step (exact), so the int8 graph takes the uint8 pixels themselves
(`input_dtype: uint8` in its manifest) and preprocessing skips the float conversion. The first convs may
stay fp32: by default the fewest (0-4) with which the int8 model keeps 97 % of the fp32 model's boxes on other
frames of the calibration source (`choose_fp32_convs`). Writes `models/NAME-int8.onnx` and its manifest;
`gridwatch.agreement` reports how far int8 agrees with fp32 (boxes matched at IoU >= 0.5 with the same class,
missed, extra).
Needs the `onnx` package (the `export` extra) besides onnxruntime.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import helper, numpy_helper, version_converter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quant_pre_process, quantize_static

from core.errors import ModelError
from core.types import Image
from detectors.detector import FAMILIES, Detector
from detectors.family import ModelFamily
from detectors.manifest import ModelManifest, dump_manifest, load_manifest
from detectors.session import create_session
from gridwatch.agreement import CONF, agreement, read_frames
from gridwatch.modelstore import resolve_model, sha256_file

logger = logging.getLogger(__name__)

MIN_OPSET = 13  # per-channel DequantizeLinear (its `axis`) needs opset 13
AUTO_TARGET = 0.97  # share of the fp32 boxes the automatic choice of leading fp32 convs aims to match
MAX_FP32_CONVS = 4
EVAL_FRAMES = 30  # frames the automatic choice judges on (others than the calibration frames where it can)
# ops whose QDQ pair ONNX Runtime drops (they run on the uint8 data): their input and output share one scale
SAME_SCALE_OPS = {"Resize", "MaxPool", "Split", "Reshape", "Transpose", "Slice", "Flatten", "Squeeze", "Unsqueeze"}
# ops whose inputs and output get one scale, so ONNX Runtime's QLinearConcat / QLinearAdd copy or add
# without requantising each input
SHARED_SCALE_OPS = {"Concat", "Add"}
# ops that only move values around: on the input they may run on uint8 as well as on float
LAYOUT_OPS = {"SpaceToDepth", "Gather", "Transpose", "Reshape"}
# one uint8 step of each family's float input: ultralytics takes 0-1 (x / 255), YOLOX 0-255
INPUT_SCALE = {"ultralytics": 1 / 255, "yolox": 1.0}


class FrameReader(CalibrationDataReader):  # type: ignore[misc]
    """Feeds calibration frames, preprocessed by the model family, one at a time."""

    def __init__(self, family: ModelFamily, input_name: str, images: Sequence[Image]) -> None:
        self._batches = iter([{input_name: family.preprocess([image])[0]} for image in images])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _at_least_opset(model_path: Path, tmp: Path) -> Path:
    """`model_path`, or a copy converted to MIN_OPSET in `tmp` when its default-domain opset is older."""
    model = onnx.load(str(model_path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset >= MIN_OPSET:
        return model_path
    logger.info("%s: converting opset %d to %d for per-channel quantisation", model_path.name, opset, MIN_OPSET)
    converted = tmp / "opset.onnx"
    onnx.save(version_converter.convert_version(model, MIN_OPSET), str(converted))
    return converted


def float_nodes(manifest: ModelManifest, model_path: Path) -> list[str]:
    """Nodes left in fp32: an ultralytics head's DFL (a quantised softmax is slower and rounds box edges to
    the uint8 grid) and everything that follows from it: box decoding and the output concat. Quantised,
    that concat puts class scores (0-1) on the scale of pixel coordinates (0-640, about 2.5 a step), so
    every score became 0."""
    if manifest.family != "ultralytics":
        return []
    nodes = list(onnx.load(str(model_path)).graph.node)
    kept = [n for n in nodes if "/dfl/" in n.name]
    made = {out for n in kept for out in n.output}
    for node in nodes:  # topological order: one pass reaches every descendant
        if node not in kept and any(name in made for name in node.input):
            kept.append(node)
            made.update(node.output)
    return [n.name for n in kept]


def _stem_conv(graph: onnx.GraphProto) -> onnx.NodeProto | None:
    """The graph input's only consumer when it is a plain 3x3 stride-2 pad-1 Conv with constant weights."""
    users = [n for n in graph.node if graph.input[0].name in n.input]
    if len(users) != 1 or users[0].op_type != "Conv":
        return None
    conv = users[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    plain = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "group": 1, "dilations": [1, 1]}
    if any((list(attrs[k]) if isinstance(attrs.get(k), list) else attrs.get(k, 1)) != v for k, v in plain.items()):
        return None
    return conv if any(t.name == conv.input[1] for t in graph.initializer) else None


def stem_space_to_depth(model: onnx.ModelProto) -> bool:
    """Exact rewrite of a 3x3 stride-2 stem conv on few channels (27 multiply-adds per output, which ONNX
    Runtime's int8 convolution runs at a tenth of its speed) into SpaceToDepth(2) and a 2x2 stride-1 conv on
    4x the channels, padded top and left only. False when the first node is not such a conv."""
    graph = model.graph
    conv = _stem_conv(graph)
    if conv is None:
        return False
    weight = numpy_helper.to_array(next(t for t in graph.initializer if t.name == conv.input[1]))
    out_channels, channels = weight.shape[:2]
    blocked = np.zeros((out_channels, 4 * channels, 2, 2), weight.dtype)
    # (block offset, position in block) -> 3x3 kernel tap: block above/left holds only tap 0 at position 1
    taps = {(0, 1): 0, (1, 0): 1, (1, 1): 2}
    for (block_y, row), ky in taps.items():
        for (block_x, col), kx in taps.items():
            start = (row * 2 + col) * channels
            blocked[:, start : start + channels, block_y, block_x] = weight[:, :, ky, kx]
    name, stacked = conv.input[1] + ".s2d", graph.input[0].name + "_s2d"
    graph.initializer.append(numpy_helper.from_array(blocked, name))
    s2d = helper.make_node("SpaceToDepth", [graph.input[0].name], [stacked], f"{conv.name}_s2d", blocksize=2)
    new = helper.make_node(
        "Conv",
        [stacked, name, *conv.input[2:]],
        list(conv.output),
        conv.name,
        kernel_shape=[2, 2],
        strides=[1, 1],
        pads=[1, 1, 0, 0],
        dilations=[1, 1],
        group=1,
    )
    at = list(graph.node).index(conv)
    graph.node.remove(conv)
    graph.node.insert(at, new)
    graph.node.insert(at, s2d)
    return True


def _per_tensor(graph: onnx.GraphProto, quant: onnx.NodeProto) -> bool:
    """Whether a QuantizeLinear's scale and zero point are constant scalars (one scale for the whole tensor)."""
    init = {t.name: t for t in graph.initializer}
    params = [init.get(name) for name in quant.input[1:3]]
    return len(params) == 2 and all(t is not None and not t.dims for t in params)


def quantize_at_input(model: onnx.ModelProto) -> bool:
    """input -> layout ops (a SpaceToDepth stem, YOLOX's Focus as SpaceToDepth + channel Gather) ->
    QuantizeLinear becomes input -> QuantizeLinear -> the same layout ops: the same bytes, with the layout
    ops moving uint8 instead of float32. False when the input does not reach a QuantizeLinear that way."""
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    chain: list[onnx.NodeProto] = []
    tensor = graph.input[0].name
    while len(users := consumers.get(tensor, [])) == 1 and users[0].op_type in LAYOUT_OPS:
        if users[0].input[0] != tensor:  # e.g. the tensor is a Gather's indices, not its data
            return False
        chain.append(users[0])
        tensor = users[0].output[0]
    quant = users[0] if len(users) == 1 and users[0].op_type == "QuantizeLinear" else None
    if not chain or quant is None or quant.input[0] != tensor or not _per_tensor(graph, quant):
        return False  # a per-channel scale would land on other channels once the layout ops follow it
    quantized = quant.output[0]
    quant.input[0], quant.output[0] = graph.input[0].name, f"{quantized}_at_input"
    chain[0].input[0] = quant.output[0]
    moved = {c.output[0] for c in chain} | {quantized}
    chain[-1].output[0] = quantized
    nodes = [n for n in graph.node if n is not quant]
    nodes.insert(nodes.index(chain[0]), quant)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [v for v in graph.value_info if v.name not in moved]  # their element type is now uint8
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return True


def _input_quantizer(graph: onnx.GraphProto) -> onnx.NodeProto | None:
    """The graph input's only consumer when it is a QuantizeLinear with constant scale and zero point."""
    users = [n for n in graph.node if graph.input[0].name in n.input]
    if len(users) != 1 or users[0].op_type != "QuantizeLinear" or len(users[0].input) != 3:
        return None
    constants = {t.name for t in graph.initializer}
    return users[0] if users[0].input[1] in constants and users[0].input[2] in constants else None


def exact_input_scale(model: onnx.ModelProto, scale: float) -> bool:
    """Give the input's QuantizeLinear the scale of one pixel step in the family's float input (1/255, or 1
    for 0-255 inputs) and zero point 0, so every pixel quantises to itself: no rounding error at the input.
    False when the input is not quantised that way."""
    quant = _input_quantizer(model.graph)
    if quant is None:
        return False
    init = {t.name: t for t in model.graph.initializer}
    init[quant.input[1]].CopyFrom(numpy_helper.from_array(np.array(scale, np.float32), quant.input[1]))
    init[quant.input[2]].CopyFrom(numpy_helper.from_array(np.array(0, np.uint8), quant.input[2]))
    return True


def uint8_input(model: onnx.ModelProto, scale: float) -> bool:
    """Drop the input's QuantizeLinear when its scale is one pixel step and its zero point 0: the graph then
    takes the uint8 pixels themselves, the same bytes the QuantizeLinear made from the float tensor, so the
    preprocessing skips the float conversion and the graph its first pass. False when that does not hold."""
    graph = model.graph
    quant = _input_quantizer(graph)
    if quant is None:
        return False
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    if float(init[quant.input[1]]) != np.float32(scale) or int(init[quant.input[2]]) != 0:
        return False
    quantized, name = quant.output[0], graph.input[0].name
    for node in graph.node:
        for i, tensor in enumerate(node.input):
            if tensor == quantized:
                node.input[i] = name
    graph.node.remove(quant)
    graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.UINT8
    kept = [v for v in graph.value_info if v.name != quantized]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return True


def _qdq_params(
    node: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]], producer: dict[str, onnx.NodeProto]
) -> list[tuple[str, str]]:
    """(scale, zero point) initializer names of the DQ nodes feeding `node` and the Q nodes after it."""
    params = []
    for name in node.input:
        dq = producer.get(name)
        quantized_at_run_time = dq is not None and dq.input[0] in producer  # not a stored constant
        if dq is not None and dq.op_type == "DequantizeLinear" and len(dq.input) == 3 and quantized_at_run_time:
            params.append((dq.input[1], dq.input[2]))
    for name in node.output:
        params += [(q.input[1], q.input[2]) for q in consumers.get(name, []) if q.op_type == "QuantizeLinear"]
    return params


def share_scales(model: onnx.ModelProto) -> int:
    """Give the inputs and output of every quantised Concat and Add (and, through the ops that keep a scale,
    their neighbours) one scale and zero point covering all their calibrated ranges; the number of tensors
    whose scale changed."""
    graph = model.graph
    producer = {out: n for n in graph.node for out in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    init = {t.name: t for t in graph.initializer}
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(key: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    for node in graph.node:
        if node.op_type in SHARED_SCALE_OPS | SAME_SCALE_OPS:
            params = [p for p in _qdq_params(node, consumers, producer) if p[0] in init and p[1] in init]
            for p in params[1:]:
                parent[root(p)] = root(params[0])
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for key in list(parent):
        groups.setdefault(root(key), []).append(key)
    changed = 0
    for members in (m for m in groups.values() if len(m) > 1):
        if any(init[zero_name].data_type != onnx.TensorProto.UINT8 for _, zero_name in members):
            continue  # the ranges below are uint8's
        low = high = 0.0
        for scale_name, zero_name in members:
            scale, zero = float(numpy_helper.to_array(init[scale_name])), int(numpy_helper.to_array(init[zero_name]))
            low, high = min(low, -zero * scale), max(high, (255 - zero) * scale)
        scale = (high - low) / 255
        for scale_name, zero_name in members:
            init[scale_name].CopyFrom(numpy_helper.from_array(np.array(scale, np.float32), scale_name))
            init[zero_name].CopyFrom(numpy_helper.from_array(np.array(round(-low / scale), np.uint8), zero_name))
            changed += 1
    return changed


def leading_nodes(model_path: Path, convs: int) -> list[str]:
    """The nodes before the graph's (`convs` + 1)-th Conv, in graph order: its first `convs` convs with their
    activations and whatever runs between them."""
    if convs <= 0:
        return []
    kept, seen = [], 0
    for node in onnx.load(str(model_path)).graph.node:
        if node.op_type == "Conv":
            seen += 1
            if seen > convs:
                break
        kept.append(node.name)
    return kept


def quantize_onnx(manifest: ModelManifest, fp32: Path, out: Path, images: Sequence[Image], fp32_convs: int = 0) -> bool:
    """Static QDQ int8 quantisation of `fp32` into `out`, calibrated on `images`. `float_nodes` and the first
    `fp32_convs` convs stay fp32; otherwise the stem conv becomes SpaceToDepth + 2x2 conv where it applies and
    the graph takes uint8 pixels where the family's input scale allows. Concat / Add inputs share a scale.
    True when the input became uint8."""
    family = FAMILIES[manifest.family](manifest)
    input_name = onnxruntime.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    with tempfile.TemporaryDirectory(prefix="gridwatch-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(_at_least_opset(fp32, Path(tmp))), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        if fp32_convs == 0 and stem_space_to_depth(model):
            onnx.save(model, str(prepared))
        excluded = float_nodes(manifest, prepared) + leading_nodes(prepared, fp32_convs)
        logger.info("%s: %d nodes kept in fp32 (%d leading convs)", fp32.name, len(excluded), fp32_convs)
        quantize_static(
            str(prepared),
            str(out),
            FrameReader(family, input_name, images),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
        )
    quantized = onnx.load(str(out))
    moved = quantize_at_input(quantized)
    pixel = INPUT_SCALE.get(manifest.family)
    exact = pixel is not None and exact_input_scale(quantized, pixel)
    shared = share_scales(quantized)
    as_uint8 = pixel is not None and exact and uint8_input(quantized, pixel)
    onnx.checker.check_model(quantized)
    onnx.save(quantized, str(out))
    logger.info(
        "%s: input quantised before its layout ops: %s, tensors given a shared scale: %d, uint8 input: %s",
        out.name,
        moved,
        shared,
        as_uint8,
    )
    return as_uint8


def _convs(count: int) -> str:
    return f"{count} conv" if count == 1 else f"{count} convs"


def int8_manifest(manifest: ModelManifest, as_uint8: bool) -> ModelManifest:
    """The manifest to run a quantised copy of `manifest`'s model with (`quantize_onnx` said whether its
    input became uint8)."""
    return manifest.model_copy(update={"input_dtype": "uint8"}) if as_uint8 else manifest


def choose_fp32_convs(
    manifest: ModelManifest, fp32: Path, images: Sequence[Image], evaluation: Sequence[Image]
) -> tuple[int, list[str]]:
    """The fewest leading convs (0 to MAX_FP32_CONVS) to keep in fp32 so that the int8 model matches at least
    AUTO_TARGET of the fp32 model's boxes on `evaluation`, or the best of them; and one line per try. Early
    convs see the raw picture at full resolution, and in some models (YOLOX-nano's depthwise stem) their int8
    error spreads through everything after them."""
    reference = Detector(create_session(fp32), manifest, conf_threshold=CONF)
    best_rate, best, lines = -1.0, 0, []
    with tempfile.TemporaryDirectory(prefix="gridwatch-quant-try-") as tmp:
        for convs in range(MAX_FP32_CONVS + 1):
            trial = Path(tmp) / f"{convs}.onnx"
            as_uint8 = quantize_onnx(manifest, fp32, trial, images, fp32_convs=convs)
            candidate = Detector(create_session(trial), int8_manifest(manifest, as_uint8), conf_threshold=CONF)
            result = agreement(reference, candidate, evaluation)
            lines.append(f"first {_convs(convs)} in fp32: {result.summary()}")
            if result.match_rate >= AUTO_TARGET:
                return convs, lines
            if result.match_rate > best_rate:
                best_rate, best = result.match_rate, convs
    lines.append(f"none reached {AUTO_TARGET:.0%} matched: keeping the best, the first {_convs(best)} in fp32")
    return best, lines


def quantize_model(
    models_dir: Path, name: str, calibration: Path, frames: int = 32, fp32_convs: int | None = None
) -> tuple[ModelManifest, Path, list[str]]:
    """Write `models_dir/{name}-int8.onnx` and `models_dir/{name}-int8.yaml`, calibrated on `frames` frames;
    `fp32_convs` None chooses the leading fp32 convs by agreement on other frames of `calibration`. Returns the
    manifest, the weights and the lines of that choice."""
    manifest, fp32 = resolve_model(models_dir, name)
    if manifest.family == "ssd":
        raise ModelError(f"model {name}: already int8 with NMS inside the graph; nothing to quantise")
    images = read_frames(calibration, frames)
    lines: list[str] = []
    if fp32_convs is None:
        fp32_convs, lines = choose_fp32_convs(manifest, fp32, images, read_frames(calibration, EVAL_FRAMES, step=23))
    out_name = f"{name}-int8"
    out = models_dir / f"{Path(manifest.file).stem}-int8.onnx"
    logger.info("quantising %s on %d frames from %s", name, len(images), calibration)
    as_uint8 = quantize_onnx(manifest, fp32, out, images, fp32_convs=fp32_convs)
    quantized = int8_manifest(manifest, as_uint8).model_copy(
        update={
            "name": out_name,
            "version": f"{manifest.version}-int8-ort{onnxruntime.__version__}",
            "file": out.name,
            "sha256": sha256_file(out),
            "download_url": None,
            "description": f"int8 QDQ (per-channel weights, uint8 activations) of {name}, the first "
            f"{_convs(fp32_convs)} kept in fp32, ONNX Runtime static quantisation calibrated on {len(images)} "
            f"frames of {calibration.name}. Made locally by `gridwatch models quantize`.",
        }
    )
    manifest_path = models_dir / f"{out_name}.yaml"
    header = f"{out_name}: made by `gridwatch models quantize {name}`, weights never committed."
    manifest_path.write_text(dump_manifest(quantized, header), encoding="utf-8")
    return load_manifest(manifest_path), out, lines
