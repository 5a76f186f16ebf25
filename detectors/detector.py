"""`Detector`: one ONNX session plus its family's pre/post-processing, images in, Detections out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import onnxruntime
from numpy.typing import NDArray

from core.errors import ModelError
from core.types import Detections, Image
from detectors.family import ModelFamily
from detectors.manifest import ModelManifest
from detectors.ssd import SsdFamily
from detectors.ultralytics import UltralyticsFamily
from detectors.yolox import YoloxFamily

logger = logging.getLogger(__name__)

FAMILIES: dict[str, Callable[[ModelManifest], ModelFamily]] = {
    "yolox": YoloxFamily,
    "ssd": SsdFamily,
    "ultralytics": UltralyticsFamily,
}


def _check_input_type(onnx_type: str, family: ModelFamily, manifest: ModelManifest) -> None:
    """The graph's input element type must be the one the family's preprocessing makes."""
    want = family.input_dtype
    got = {"tensor(uint8)": "uint8", "tensor(float)": "float32"}.get(onnx_type, onnx_type)
    if got != want:
        raise ModelError(
            f"model {manifest.name}: graph input is {got}, the manifest feeds it {want} (input_dtype: "
            f"{manifest.input_dtype}); an int8 model from `gridwatch models quantize` needs its own manifest"
        )


def _check_input_shape(shape: Sequence[object], family: ModelFamily, manifest: ModelManifest) -> None:
    """Static height and width in the graph must agree with the manifest's input size."""
    if len(shape) != 4:
        raise ModelError(f"model {manifest.name}: input has shape {list(shape)}, expected 4 dimensions")
    height, width = (shape[2], shape[3]) if family.layout == "NCHW" else (shape[1], shape[2])
    want_w, want_h = manifest.input_size
    if (isinstance(width, int) and width != want_w) or (isinstance(height, int) and height != want_h):
        raise ModelError(
            f"model {manifest.name}: graph input is {width}x{height}, manifest input_size is {want_w}x{want_h}"
        )


class Detector:
    """Runs one model on BGR uint8 images. Holds no per-call state, so threads may share one instance."""

    def __init__(
        self,
        session: onnxruntime.InferenceSession,
        manifest: ModelManifest,
        *,
        conf_threshold: float = 0.35,
        nms_iou: float = 0.45,
    ) -> None:
        factory = FAMILIES.get(manifest.family)
        if factory is None:
            raise ModelError(
                f"model {manifest.name}: no decoder for family {manifest.family!r}; known: {sorted(FAMILIES)}"
            )
        self._session = session
        self._manifest = manifest
        self._family = factory(manifest)
        self._conf_threshold = conf_threshold
        self._nms_iou = nms_iou
        model_input = session.get_inputs()[0]
        _check_input_shape(model_input.shape, self._family, manifest)
        _check_input_type(model_input.type, self._family, manifest)
        self._input_name: str = model_input.name
        self._output_names: list[str] = [o.name for o in session.get_outputs()]
        self.dynamic_batch: bool = not isinstance(model_input.shape[0], int)
        if manifest.dynamic_batch and not self.dynamic_batch:
            logger.warning("model %s: manifest says dynamic_batch but the graph's batch axis is fixed", manifest.name)

    @property
    def name(self) -> str:
        return self._manifest.name

    @property
    def labels(self) -> list[str]:
        return list(self._manifest.labels)

    @property
    def manifest(self) -> ModelManifest:
        return self._manifest

    @property
    def providers(self) -> list[str]:
        """The execution providers the session runs on, preferred first."""
        return list(self._session.get_providers())

    def with_conf_threshold(self, conf_threshold: float) -> Detector:
        """The same model and session with another confidence threshold."""
        return Detector(self._session, self._manifest, conf_threshold=conf_threshold, nms_iou=self._nms_iou)

    def detect(self, image: Image) -> Detections:
        """Detections on one BGR uint8 HxWx3 image, boxes in its pixels, best confidence first."""
        return self._run([image])[0]

    def detect_batch(self, images: Sequence[Image]) -> list[Detections]:
        """One Detections per image: a single run when the batch axis is dynamic, else image by image."""
        if not images:
            return []
        if self.dynamic_batch:
            return self._run(images)
        return [self._run([image])[0] for image in images]

    def input_tensor(self, images: Sequence[Image]) -> NDArray[Any]:
        """The model input for `images`, exactly as `detect_batch` feeds it (for benchmarks and calibration)."""
        return self._family.preprocess(images)[0]

    def _run(self, images: Sequence[Image]) -> list[Detections]:
        tensor, maps = self._family.preprocess(images)
        outputs = self._session.run(self._output_names, {self._input_name: tensor})
        return self._family.postprocess(outputs, maps, self._conf_threshold, self._nms_iou)
