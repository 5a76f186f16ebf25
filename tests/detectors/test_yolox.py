from __future__ import annotations

import numpy as np

from core.types import Detections, Image
from detectors.detector import Detector
from detectors.yolox import make_grids
from tests.detectors.conftest import labelled


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
