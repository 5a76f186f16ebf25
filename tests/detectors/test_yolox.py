from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import pytest

from core.types import Detections, Image
from detectors.detector import Detector
from detectors.manifest import ModelManifest
from detectors.session import create_session
from detectors.yolox import make_grids
from tests.detectors.conftest import REFERENCE_PICTURES, labelled
from tests.detectors.matching import assert_same_detections


def test_grids_cover_strides_8_16_32_in_row_order() -> None:
    grid, stride = make_grids((416, 416))

    assert grid.shape == (3549, 2)
    assert stride.shape == (3549, 1)
    assert np.unique(stride).tolist() == [8, 16, 32]
    np.testing.assert_array_equal(grid[:3], [[0, 0], [1, 0], [2, 0]])  # x runs fastest
    np.testing.assert_array_equal(grid[52 * 52 - 1], [51, 51])
    np.testing.assert_array_equal(grid[-1], [12, 12])


def box_of(detector: Detector, found: Detections, label: str) -> np.ndarray:
    mask = np.array([name == label for name in labelled(detector, found)])
    assert mask.any(), f"no {label} in {labelled(detector, found)}"
    best: np.ndarray = found.xyxy[mask][np.argmax(found.confidence[mask])]
    return best


def test_bus_jpg_finds_the_bus_and_people(yolox: Detector, bus: Image) -> None:
    found = yolox.detect(bus)

    names = labelled(yolox, found)
    assert names.count("person") >= 3
    x1, y1, x2, y2 = box_of(yolox, found, "bus")
    height, width = bus.shape[:2]
    assert x2 - x1 > 0.8 * width  # the bus spans the picture's width
    assert 0.15 * height < y1 < 0.35 * height and 0.6 * height < y2 < 0.8 * height
    assert np.all(found.xyxy >= 0) and np.all(found.xyxy[:, [0, 2]] <= width)
    assert np.all(found.xyxy[:, [1, 3]] <= height)
    assert np.all(np.diff(found.confidence) <= 0)  # best first


def test_people_on_bus_jpg_are_standing_figures(yolox: Detector, bus: Image) -> None:
    found = yolox.detect(bus)

    people = found.xyxy[np.array(labelled(yolox, found)) == "person"]
    heights = people[:, 3] - people[:, 1]
    widths = people[:, 2] - people[:, 0]
    assert np.all(heights > 1.5 * widths)
    assert np.all(heights > 0.3 * bus.shape[0])


def test_zidane_jpg_finds_two_people(yolox: Detector, zidane: Image) -> None:
    found = yolox.detect(zidane)

    people = found.xyxy[np.array(labelled(yolox, found)) == "person"]
    assert len(people) == 2
    centres = (people[:, 0] + people[:, 2]) / 2
    assert sorted(centres.tolist())[0] < 640 < sorted(centres.tolist())[1]  # one each side


def test_footage_frame_finds_pedestrians(yolox: Detector, footage_frame: Image) -> None:
    found = yolox.detect(footage_frame)

    people = found.xyxy[np.array(labelled(yolox, found)) == "person"]
    assert len(people) >= 3
    assert np.all(people[:, 3] - people[:, 1] < footage_frame.shape[0] / 2)  # small figures, far away


def test_confidence_threshold_is_applied(yolox: Detector, bus: Image) -> None:
    found = yolox.detect(bus)

    assert np.all(found.confidence > 0.35)


def test_batch_gives_the_same_detections_as_single_images(
    yolox: Detector, bus: Image, zidane: Image, footage_frame: Image
) -> None:
    images = [bus, zidane, footage_frame]

    batched = yolox.detect_batch(images)

    assert len(batched) == 3
    for image, result in zip(images, batched, strict=True):
        single = yolox.detect(image)
        np.testing.assert_allclose(result.xyxy, single.xyxy)
        np.testing.assert_array_equal(result.class_id, single.class_id)
    assert yolox.detect_batch([]) == []


def test_blank_image_finds_nothing(yolox: Detector) -> None:
    found = yolox.detect(np.full((480, 640, 3), 114, np.uint8))

    assert len(found) == 0
    assert found.xyxy.shape == (0, 4)


REFERENCE_CONF = 0.25


def yolox_reference(session: onnxruntime.InferenceSession, image: Image, conf: float, iou: float) -> Detections:
    """YOLOX's own decoding, written out apart from `detectors.yolox`: Megvii's `preproc` (top-left letterbox,
    pad 114, `int()` sizes, BGR 0-255), `demo_postprocess` (grid offsets and exp sizes times the stride) and
    `postprocess` (best class per anchor, score = objectness x class score, class-aware NMS; OpenCV's
    `NMSBoxesBatched` stands in for torchvision's `batched_nms`), boxes clipped to the picture."""
    size = 416
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    padded = np.full((size, size, 3), 114, np.uint8)
    resized = cv2.resize(image, (int(w * r), int(h * r)), interpolation=cv2.INTER_LINEAR)
    padded[: resized.shape[0], : resized.shape[1]] = resized
    tensor = padded.transpose(2, 0, 1)[None].astype(np.float32)
    out = session.run(None, {session.get_inputs()[0].name: tensor})[0][0]
    grids, strides = [], []
    for stride in (8, 16, 32):
        cells = size // stride
        xv, yv = np.meshgrid(np.arange(cells), np.arange(cells))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((cells * cells, 1), stride))
    grid, stride_col = np.concatenate(grids), np.concatenate(strides)
    centre = (out[:, :2] + grid) * stride_col
    wh = np.exp(out[:, 2:4]) * stride_col
    cls = np.argmax(out[:, 5:], axis=1)
    score = out[:, 4] * out[np.arange(len(out)), 5 + cls]
    keep_conf = score >= conf
    centre, wh, cls, score = centre[keep_conf], wh[keep_conf], cls[keep_conf], score[keep_conf]
    rects = np.concatenate((centre - wh / 2, wh), axis=1)
    kept = np.asarray(cv2.dnn.NMSBoxesBatched(rects.tolist(), score.tolist(), cls.tolist(), conf, iou), np.int64)
    kept = kept.reshape(-1)
    xyxy = np.concatenate((centre - wh / 2, centre + wh / 2), axis=1)[kept] / r
    xyxy = np.clip(xyxy, 0, [w, h, w, h]).astype(np.float32)
    return Detections(xyxy=xyxy, confidence=score[kept].astype(np.float32), class_id=cls[kept].astype(np.int64))


@pytest.mark.parametrize("picture", REFERENCE_PICTURES, indirect=True)
def test_decoding_agrees_with_yolox_reference_decoding(
    picture: Image, yolox_path: Path, yolox_manifest: ModelManifest
) -> None:
    session = create_session(yolox_path)
    ours = Detector(session, yolox_manifest, conf_threshold=REFERENCE_CONF, nms_iou=0.45)
    want = yolox_reference(session, picture, REFERENCE_CONF, 0.45)

    got = ours.detect(picture)

    assert len(want) >= 2, "the picture should give several boxes to compare"
    assert_same_detections(want, got)
