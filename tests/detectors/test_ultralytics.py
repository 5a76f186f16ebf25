from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from ultralytics import YOLO  # type: ignore[attr-defined]

from core.types import Detections, Image
from detectors.detector import Detector
from detectors.manifest import load_manifest
from detectors.session import create_session
from detectors.ultralytics import MAX_DET, letterbox_centred
from gridwatch.export import export_onnx, rewrite_for_cpu
from gridwatch.modelstore import sha256_file
from tests.detectors.conftest import REFERENCE_PICTURES
from tests.detectors.matching import assert_same_detections


@pytest.mark.parametrize(
    ("src_wh", "size", "placed"),
    [
        ((810, 1080), (640, 640), (80, 0, 480, 640)),  # bus.jpg: portrait, padded left and right
        ((1280, 720), (640, 640), (0, 140, 640, 360)),  # zidane.jpg: landscape, padded top and bottom
        ((768, 576), (640, 480), (0, 0, 640, 480)),  # the footage at its rect size: no padding
        ((641, 3), (640, 640), (0, 318, 640, 3)),  # pad 318.5 rounds as round(318.5 - 0.1)
        ((640, 480), (640, 480), (0, 0, 640, 480)),  # already the input size: copied, not resized
    ],
)
def test_letterbox_places_the_picture_like_ultralytics(
    src_wh: tuple[int, int], size: tuple[int, int], placed: tuple[int, int, int, int]
) -> None:
    image = np.full((src_wh[1], src_wh[0], 3), 200, np.uint8)
    canvas = np.zeros((size[1], size[0], 3), np.uint8)

    transform = letterbox_centred(image, size, canvas)

    left, top, width, height = placed
    assert (transform.pad_x, transform.pad_y) == (left, top)
    inside = canvas[top : top + height, left : left + width]
    assert np.all(inside == 200) and np.count_nonzero(canvas == 200) == inside.size
    corners = np.array([[0, 0, src_wh[0], src_wh[1]]], np.float32)
    back = transform.to_source(np.array([[left, top, left + width, top + height]], np.float32))
    np.testing.assert_allclose(back, corners, atol=1e-3)


def test_export_writes_a_dynamic_batch_manifest(yolo11n_export: tuple[Path, Path]) -> None:
    _, models_dir = yolo11n_export
    manifest = load_manifest(models_dir / "yolo11n.yaml")

    assert manifest.family == "ultralytics" and manifest.dynamic_batch
    assert manifest.input_size == (640, 640) and len(manifest.labels) == 80
    assert manifest.sha256 == sha256_file(models_dir / manifest.file)


def raw_outputs(model: Path, tensor: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    output: np.ndarray = session.run(None, {session.get_inputs()[0].name: tensor})[0]
    return output


def test_cpu_rewrites_change_no_output(
    yolo11n_export: tuple[Path, Path], yolo11n: Detector, bus: Image, zidane: Image, tmp_path: Path
) -> None:
    # given: ultralytics' own export of the same .pt, before any rewrite
    weights, _ = yolo11n_export
    plain, _, _ = export_onnx(weights, tmp_path / "plain")
    rewritten = tmp_path / "rewritten.onnx"
    rewritten.write_bytes(plain.read_bytes())
    tensor = yolo11n.input_tensor([bus, zidane])

    # when
    rewrites = rewrite_for_cpu(rewritten)

    # then: the DFL softmax is on the last axis, no channel Split is left, the outputs are the same up to rounding
    assert rewrites.dfl_softmax == 1 and rewrites.split_convs == 9  # YOLO11n: 8 C3k2 blocks and the C2PSA
    nodes = onnx.load(str(rewritten)).graph.node
    assert not [n for n in nodes if n.op_type == "Softmax" and onnx.helper.get_attribute_value(n.attribute[0]) == 1]
    assert not [n for n in nodes if n.op_type == "Split" and onnx.helper.get_attribute_value(n.attribute[0]) == 1]
    want, got = raw_outputs(plain, tensor), raw_outputs(rewritten, tensor)
    assert want[:, 4:].max() > 0.3, "the test model should give a spread of scores to compare"
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)  # float rounding only: pixels and scores


LOW_CONF = 0.05  # the random-init test model is unsure of everything: compare its low-confidence boxes too


def reference(model: Path, image: Image) -> Detections:
    """ultralytics' own predict on the same ONNX file, square 640 letterbox as ours (rect=False)."""
    result: Any = YOLO(str(model), task="detect").predict(
        image, imgsz=640, conf=LOW_CONF, iou=0.7, rect=False, verbose=False
    )
    boxes = result[0].boxes
    return Detections(
        xyxy=boxes.xyxy.numpy().astype(np.float32),
        confidence=boxes.conf.numpy().astype(np.float32),
        class_id=boxes.cls.numpy().astype(np.int64),
    )


@pytest.mark.parametrize("picture", REFERENCE_PICTURES, indirect=True)
def test_decoding_agrees_with_ultralytics_predict(picture: Image, yolo11n_export: tuple[Path, Path]) -> None:
    models_dir = yolo11n_export[1]
    manifest = load_manifest(models_dir / "yolo11n.yaml")
    ours = Detector(create_session(models_dir / manifest.file), manifest, conf_threshold=LOW_CONF, nms_iou=0.7)
    want = reference(models_dir / manifest.file, picture)

    got = ours.detect(picture)

    assert len(want) >= 3, "the test model should give several boxes to compare"
    assert_same_detections(want, got, MAX_DET)


def test_dynamic_batch_runs_once_and_equals_one_by_one(yolo11n: Detector, bus: Image, zidane: Image) -> None:
    assert yolo11n.dynamic_batch

    batched = yolo11n.detect_batch([bus, zidane, bus])

    for got, image in zip(batched, [bus, zidane, bus], strict=True):
        want = yolo11n.detect(image)
        assert len(got) == len(want)
        np.testing.assert_allclose(got.xyxy, want.xyxy, atol=0.05)
        np.testing.assert_array_equal(got.class_id, want.class_id)
