"""`gridwatch models export FILE.pt`: a user's ultralytics detect model -> ONNX with a dynamic batch axis + manifest.

Needs the `export` extra (ultralytics, torch, onnx, onnxslim). This module and `bench/` are the only places
that import ultralytics; the runtime path (`detectors/`) reads the ONNX file alone.

After ultralytics' export (onnxslim-simplified, dynamic axes), two exact graph rewrites make ONNX Runtime's
CPU kernels faster without changing what the graph computes (docs/detectors.md has the measurements):
- the DFL softmax over the 16 distance bins runs on the last axis: ultralytics exports it on axis 1 of
  [N, 16, 4, A], which ONNX Runtime computes through an internal transpose; the 1x1 conv that takes the
  expectation becomes a MatMul with the same 16 weights;
- a Conv + SiLU whose output is only split along channels (every C2f / C3k2 block) becomes one Conv + SiLU
  per part, so ONNX Runtime's blocked (NCHWc) layout runs through and the Split with its reorders goes.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import ultralytics
from onnx import helper, numpy_helper
from ultralytics import YOLO  # type: ignore[attr-defined]

from core.errors import ModelError
from detectors.manifest import ModelManifest, dump_manifest, load_manifest
from gridwatch.modelstore import sha256_file

logger = logging.getLogger(__name__)

DEFAULT_IMGSZ = 640


@dataclass(frozen=True, slots=True)
class Rewrites:
    """What `rewrite_for_cpu` changed: DFL softmaxes moved to the last axis, split convs divided."""

    dfl_softmax: int
    split_convs: int


class _Graph:
    """Producer, consumer and initializer lookups over one ONNX graph (rebuild after each rewrite)."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.init = {t.name: t for t in graph.initializer}

    def made_by(self, tensor: str, op_type: str) -> onnx.NodeProto | None:
        node = self.producer.get(tensor)
        return node if node is not None and node.op_type == op_type else None

    def used_by(self, tensor: str) -> list[onnx.NodeProto]:
        return self.consumers.get(tensor, [])

    def constant(self, name: str) -> Any:
        return numpy_helper.to_array(self.init[name]) if name in self.init else None

    def forget_shapes(self, names: set[str]) -> None:
        """Drop inferred shapes of rewritten tensors: onnxruntime would trust the stale ones."""
        kept = [v for v in self.graph.value_info if v.name not in names]
        del self.graph.value_info[:]
        self.graph.value_info.extend(kept)

    def drop_unused_initializers(self) -> None:
        used = {name for node in self.graph.node for name in node.input}
        kept = [t for t in self.graph.initializer if t.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _set_attr(node: onnx.NodeProto, name: str, value: Any) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])


def _dfl_on_last_axis(graph: onnx.GraphProto) -> int:
    """Transpose(0,2,1,3) -> Softmax(axis=1) -> Conv 1x1 (16 -> 1, no bias) becomes
    Transpose(0,1,3,2) -> Softmax(axis=-1) -> MatMul [16, 1]: [N,4,16,A] -> [N,4,A,16] -> [N,4,A,1]."""
    done = 0
    for softmax in [n for n in graph.node if n.op_type == "Softmax" and _attr(n, "axis", -1) == 1]:
        g = _Graph(graph)
        transpose = g.made_by(softmax.input[0], "Transpose")
        users = g.used_by(softmax.output[0])
        if transpose is None or list(_attr(transpose, "perm", [])) != [0, 2, 1, 3] or len(users) != 1:
            continue
        conv, weight = users[0], g.constant(users[0].input[1]) if len(users[0].input) == 2 else None
        if conv.op_type != "Conv" or weight is None or weight.shape[0] != 1 or weight.shape[2:] != (1, 1):
            continue
        if len(g.used_by(transpose.output[0])) != 1:
            continue
        matmul_weight = f"{conv.input[1]}.as_matmul"
        graph.initializer.append(numpy_helper.from_array(weight.reshape(-1, 1), matmul_weight))
        _set_attr(transpose, "perm", [0, 1, 3, 2])
        _set_attr(softmax, "axis", -1)
        matmul = helper.make_node("MatMul", [softmax.output[0], matmul_weight], list(conv.output), conv.name)
        graph.node.insert(list(graph.node).index(conv), matmul)
        graph.node.remove(conv)
        g.forget_shapes({transpose.output[0], softmax.output[0], conv.output[0]})
        done += 1
    return done


def _silu_parts(conv: onnx.NodeProto, outputs: list[str], sizes: list[int], g: _Graph) -> list[onnx.NodeProto]:
    """One Conv + Sigmoid + Mul per output channel range of `conv`, writing `outputs`."""
    weight, bias = g.constant(conv.input[1]), g.constant(conv.input[2]) if len(conv.input) > 2 else None
    nodes, start = [], 0
    for i, (size, out) in enumerate(zip(sizes, outputs, strict=True)):
        stem = f"{conv.name}_part{i}"
        g.graph.initializer.append(numpy_helper.from_array(weight[start : start + size].copy(), f"{stem}.weight"))
        inputs = [conv.input[0], f"{stem}.weight"]
        if bias is not None:
            g.graph.initializer.append(numpy_helper.from_array(bias[start : start + size].copy(), f"{stem}.bias"))
            inputs.append(f"{stem}.bias")
        part = helper.make_node("Conv", inputs, [f"{stem}_output"], stem)
        part.attribute.extend(conv.attribute)
        nodes += [
            part,
            helper.make_node("Sigmoid", [f"{stem}_output"], [f"{stem}_sigmoid"], f"{stem}/Sigmoid"),
            helper.make_node("Mul", [f"{stem}_output", f"{stem}_sigmoid"], [out], f"{stem}/Mul"),
        ]
        start += size
    return nodes


def _split_convs(graph: onnx.GraphProto) -> int:
    """Conv -> SiLU (Sigmoid, Mul) -> Split(axis=1) becomes one Conv -> SiLU per part of the split."""
    done = 0
    for split in [n for n in graph.node if n.op_type == "Split" and _attr(n, "axis", 0) == 1]:
        g = _Graph(graph)
        mul = g.made_by(split.input[0], "Mul")
        if mul is None or len(g.used_by(mul.output[0])) != 1:
            continue
        conv, sigmoid = g.made_by(mul.input[0], "Conv"), g.made_by(mul.input[1], "Sigmoid")
        if conv is None or sigmoid is None or sigmoid.input[0] != conv.output[0]:
            continue
        if len(g.used_by(conv.output[0])) != 2 or any(g.constant(name) is None for name in conv.input[1:]):
            continue
        sizes_input = g.constant(split.input[1]) if len(split.input) > 1 and split.input[1] else None
        sizes = [int(s) for s in (sizes_input if sizes_input is not None else _attr(split, "split", []))]
        if sum(sizes) != g.constant(conv.input[1]).shape[0]:
            continue
        parts = _silu_parts(conv, list(split.output), sizes, g)
        at = list(graph.node).index(split)
        for offset, node in enumerate(parts):
            graph.node.insert(at + offset, node)
        for node in (split, mul, sigmoid, conv):
            graph.node.remove(node)
        g.forget_shapes({conv.output[0], sigmoid.output[0], mul.output[0], *split.output})
        done += 1
    return done


def rewrite_for_cpu(path: Path) -> Rewrites:
    """Apply both exact rewrites to the ONNX file at `path` in place; checked with onnx.checker."""
    model = onnx.load(str(path))
    rewrites = Rewrites(_dfl_on_last_axis(model.graph), _split_convs(model.graph))
    _Graph(model.graph).drop_unused_initializers()
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    logger.info(
        "%s: DFL softmax on the last axis: %d, split convs divided: %d",
        path.name,
        rewrites.dfl_softmax,
        rewrites.split_convs,
    )
    return rewrites


def _labels(names: dict[int, str] | list[str]) -> list[str]:
    """Class names in class-id order (ultralytics keeps them as {id: name})."""
    if isinstance(names, dict):
        return [str(names[i]) for i in range(len(names))]
    return [str(n) for n in names]


def export_onnx(weights: Path, out_dir: Path, imgsz: int = DEFAULT_IMGSZ) -> tuple[Path, list[str], str]:
    """ultralytics' own ONNX export of `weights` (.pt), dynamic axes, into `out_dir` (no rewrites);
    the ONNX path, labels, model license."""
    if not weights.is_file():
        raise ModelError(f"{weights}: no such file")
    model = YOLO(str(weights))
    if model.task != "detect":
        raise ModelError(f"{weights}: task is {model.task!r}; only detect models are supported")
    with tempfile.TemporaryDirectory(prefix="gridwatch-export-") as tmp:
        # ultralytics writes the .onnx beside the .pt: work on a copy so the user's folder stays clean
        staged = Path(tmp) / weights.name
        shutil.copyfile(weights, staged)
        with warnings.catch_warnings():
            # torch's deprecation notices about the TorchScript exporter, which ultralytics chooses on purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            exported = YOLO(str(staged)).export(
                format="onnx", dynamic=True, imgsz=imgsz, simplify=True, device="cpu", verbose=False
            )
        target = out_dir / f"{weights.stem}.onnx"
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(str(exported), target)
    logger.info("exported %s to %s (dynamic batch, input %dx%d)", weights, target, imgsz, imgsz)
    return target, _labels(model.names), "AGPL-3.0 (ultralytics)"


def export_model(
    weights: Path, models_dir: Path, *, name: str | None = None, imgsz: int = DEFAULT_IMGSZ
) -> tuple[ModelManifest, Path]:
    """Export `weights` to `models_dir/{file}.onnx` (rewritten for CPU) and write `models_dir/{name}.yaml`."""
    name = name or weights.stem
    onnx_path, labels, license_ = export_onnx(weights, models_dir, imgsz)
    file = f"{name}.onnx"
    if onnx_path.name != file:
        onnx_path = onnx_path.replace(models_dir / file)
    rewrites = rewrite_for_cpu(onnx_path)
    manifest = ModelManifest(
        name=name,
        version=f"ultralytics-{ultralytics.__version__}",
        file=file,
        sha256=sha256_file(onnx_path),
        family="ultralytics",
        input_size=(imgsz, imgsz),
        labels=labels,
        license=license_,
        source_url=str(weights.resolve()),
        dynamic_batch=True,
        description=f"exported by `gridwatch models export` from {weights.name} with ultralytics "
        f"{ultralytics.__version__}; input [batch,3,{imgsz},{imgsz}] RGB 0-1, output [batch,{4 + len(labels)},A]; "
        f"rewritten for CPU ({rewrites.dfl_softmax} DFL softmax on the last axis, "
        f"{rewrites.split_convs} split convs divided)",
    )
    manifest_path = models_dir / f"{name}.yaml"
    header = f"{name}: local ultralytics export, weights never committed (gridwatch models export)."
    manifest_path.write_text(dump_manifest(manifest, header), encoding="utf-8")
    logger.info("wrote manifest %s (sha256 %s)", manifest_path, manifest.sha256)
    return load_manifest(manifest_path), onnx_path
