"""`gridwatch models quantize NAME --calibration DIR`: ONNX Runtime static int8 quantisation on real frames.

QDQ format, per-channel int8 weights, uint8 activations (the U8S8 kernels that use VNNI on x86), MinMax
calibration over frames preprocessed exactly as at run time, after `quant_pre_process` (shape inference and
graph optimisation); an ultralytics head's DFL stays fp32. Writes `models/NAME-int8.onnx` and its manifest,
and reports the agreement with the fp32 model (boxes matched at IoU >= 0.5 with the same class, missed, extra).
Needs the `onnx` package (the `export` extra) besides onnxruntime.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime
from onnx import version_converter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quant_pre_process, quantize_static

from core.errors import ModelError
from core.types import Detections, Image
from detectors.detector import FAMILIES, Detector
from detectors.family import ModelFamily
from detectors.manifest import ModelManifest, dump_manifest, load_manifest
from detectors.nms import iou
from detectors.session import create_session
from gridwatch.modelstore import resolve_model, sha256_file

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
MIN_OPSET = 13  # per-channel DequantizeLinear (its `axis`) needs opset 13
MATCH_IOU = 0.5


def _video_frames(path: Path, count: int, step: int) -> Iterator[Image]:
    capture = cv2.VideoCapture(str(path))
    try:
        index = 0
        yielded = 0
        while yielded < count:
            ok, frame = capture.read()
            if not ok:
                return
            if index % step == 0:
                yielded += 1
                yield np.asarray(frame, dtype=np.uint8)
            index += 1
    finally:
        capture.release()


def read_frames(source: Path, count: int, step: int = 10) -> list[Image]:
    """Up to `count` BGR frames: the images of a directory (sorted), or every `step`-th frame of a video."""
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:count]
        frames = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in files]
        images = [np.asarray(f, dtype=np.uint8) for f in frames if f is not None]
    elif source.is_file():
        images = list(_video_frames(source, count, step))
    else:
        raise ModelError(f"{source}: calibration source missing (a directory of images or a video file)")
    if not images:
        raise ModelError(f"{source}: no readable frames for calibration")
    return images


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
    """Nodes left in fp32: an ultralytics head's DFL (softmax over 16 bins and its expectation), whose
    int8 form is slower (a quantised softmax) and rounds box edges to the uint8 grid."""
    if manifest.family != "ultralytics":
        return []
    return [n.name for n in onnx.load(str(model_path)).graph.node if "/dfl/" in n.name]


def quantize_onnx(manifest: ModelManifest, fp32: Path, out: Path, images: Sequence[Image]) -> None:
    """Static QDQ int8 quantisation of `fp32` into `out`, calibrated on `images` (the DFL stays fp32)."""
    family = FAMILIES[manifest.family](manifest)
    input_name = onnxruntime.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    with tempfile.TemporaryDirectory(prefix="gridwatch-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(_at_least_opset(fp32, Path(tmp))), str(prepared), skip_symbolic_shape=True)
        excluded = float_nodes(manifest, prepared)
        logger.info("%s: %d nodes kept in fp32", fp32.name, len(excluded))
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


def quantize_model(models_dir: Path, name: str, calibration: Path, frames: int = 32) -> tuple[ModelManifest, Path]:
    """Write `models_dir/{name}-int8.onnx` and `models_dir/{name}-int8.yaml`, calibrated on `frames` frames."""
    manifest, fp32 = resolve_model(models_dir, name)
    if manifest.family == "ssd":
        raise ModelError(f"model {name}: already int8 with NMS inside the graph; nothing to quantise")
    images = read_frames(calibration, frames)
    out_name = f"{name}-int8"
    out = models_dir / f"{Path(manifest.file).stem}-int8.onnx"
    logger.info("quantising %s on %d frames from %s", name, len(images), calibration)
    quantize_onnx(manifest, fp32, out, images)
    quantized = manifest.model_copy(
        update={
            "name": out_name,
            "version": f"{manifest.version}-int8-ort{onnxruntime.__version__}",
            "file": out.name,
            "sha256": sha256_file(out),
            "download_url": None,
            "description": f"int8 QDQ (per-channel weights, uint8 activations) of {name}, ONNX Runtime static "
            f"quantisation calibrated on {len(images)} frames of {calibration.name}. "
            "Made locally by `gridwatch models quantize`.",
        }
    )
    manifest_path = models_dir / f"{out_name}.yaml"
    header = f"{out_name}: made by `gridwatch models quantize {name}`, weights never committed."
    manifest_path.write_text(dump_manifest(quantized, header), encoding="utf-8")
    return load_manifest(manifest_path), out


@dataclass(frozen=True, slots=True)
class Agreement:
    """fp32 boxes matched by an int8 box of the same class at IoU >= 0.5, fp32 boxes missed, int8 boxes extra."""

    frames: int
    reference: int
    matched: int
    missed: int
    extra: int

    @property
    def match_rate(self) -> float:
        return self.matched / self.reference if self.reference else 1.0

    def summary(self) -> str:
        return (
            f"{self.frames} frames, {self.reference} fp32 boxes: {self.matched} matched "
            f"({self.match_rate:.1%}), {self.missed} missed, {self.extra} extra (IoU >= {MATCH_IOU}, same class)"
        )


def match_count(reference: Detections, candidate: Detections, min_iou: float = MATCH_IOU) -> int:
    """Greedy one-to-one matching, best IoU first, same class only."""
    if not len(reference) or not len(candidate):
        return 0
    overlap = iou(reference.xyxy, candidate.xyxy)
    overlap[reference.class_id[:, None] != candidate.class_id[None, :]] = 0
    matched = 0
    while True:
        r, c = np.unravel_index(int(np.argmax(overlap)), overlap.shape)
        if overlap[r, c] < min_iou:
            return matched
        matched += 1
        overlap[r, :] = 0
        overlap[:, c] = 0


def agreement(reference: Detector, candidate: Detector, images: Sequence[Image]) -> Agreement:
    """How well `candidate` (int8) reproduces `reference` (fp32) on `images`."""
    total = matched = extra = 0
    for image in images:
        want, got = reference.detect(image), candidate.detect(image)
        hits = match_count(want, got)
        total += len(want)
        matched += hits
        extra += len(got) - hits
    return Agreement(len(images), total, matched, total - matched, extra)


def agreement_report(models_dir: Path, fp32_name: str, int8_name: str, footage: Path, frames: int = 50) -> str:
    """Agreement of `int8_name` with `fp32_name` on `frames` frames of `footage`, in one line."""
    detectors = []
    for name in (fp32_name, int8_name):
        manifest, weights = resolve_model(models_dir, name)
        detectors.append(Detector(create_session(weights), manifest))
    result = agreement(detectors[0], detectors[1], read_frames(footage, frames, step=15))
    return f"agreement of {int8_name} with {fp32_name} on {footage.name}: {result.summary()}"
