"""The interface every model family implements: images -> input tensor, raw outputs -> Detections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from numpy.typing import NDArray

from core.types import Detections, FloatArray, Image

Layout = Literal["NCHW", "NHWC"]
InputDtype = Literal["float32", "uint8"]


class BoxMap(Protocol):
    """Maps boxes from model-input pixels back to one source image's pixels."""

    def to_source(self, xyxy: FloatArray) -> FloatArray: ...


class ModelFamily(Protocol):
    """Pre- and post-processing of one model family. Implementations hold no per-call state."""

    layout: Layout
    input_dtype: InputDtype  # the element type `preprocess` makes, which the graph's input must have

    def preprocess(self, images: Sequence[Image]) -> tuple[NDArray[Any], list[BoxMap]]:
        """The batched input tensor for `images` and, per image, the map back to its pixels."""
        ...

    def postprocess(
        self,
        outputs: Sequence[NDArray[Any]],
        maps: Sequence[BoxMap],
        conf_threshold: float,
        nms_iou: float,
    ) -> list[Detections]:
        """One Detections per image, boxes in source pixels, best confidence first."""
        ...
