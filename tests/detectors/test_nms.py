from __future__ import annotations

import numpy as np
import pytest

from detectors.nms import batched_nms, iou, nms


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


def scores(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_iou_matrix_values() -> None:
    a = boxes((0, 0, 10, 10), (0, 0, 0, 0))
    b = boxes((0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30))

    result = iou(a, b)

    assert result.shape == (2, 3)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result[0], [1.0, 50 / 150, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(result[1], [0.0, 0.0, 0.0])  # an empty box overlaps nothing


NMS_CASES = [
    # name, boxes, scores, threshold, kept indices (best first)
    ("empty", boxes(), scores(), 0.5, []),
    ("single", boxes((0, 0, 10, 10)), scores(0.9), 0.5, [0]),
    ("duplicate suppressed", boxes((0, 0, 10, 10), (0, 0, 10, 10)), scores(0.8, 0.9), 0.5, [1]),
    ("disjoint both kept", boxes((0, 0, 10, 10), (20, 20, 30, 30)), scores(0.5, 0.9), 0.5, [1, 0]),
    # IoU 1/3 between neighbours: kept at 0.5, suppressed at 0.3
    ("below threshold kept", boxes((0, 0, 10, 10), (5, 0, 15, 10)), scores(0.9, 0.8), 0.5, [0, 1]),
    ("above threshold dropped", boxes((0, 0, 10, 10), (5, 0, 15, 10)), scores(0.9, 0.8), 0.3, [0]),
    # a chain: 0 suppresses 1, so 1 cannot suppress 2 although they overlap
    (
        "chain",
        boxes((0, 0, 10, 10), (4, 0, 14, 10), (8, 0, 18, 10)),
        scores(0.9, 0.8, 0.7),
        0.3,
        [0, 2],
    ),
]


@pytest.mark.parametrize(("name", "xyxy", "conf", "threshold", "kept"), NMS_CASES, ids=[c[0] for c in NMS_CASES])
def test_nms(name: str, xyxy: np.ndarray, conf: np.ndarray, threshold: float, kept: list[int]) -> None:
    result = nms(xyxy, conf, threshold)

    assert result.dtype == np.int64
    assert result.tolist() == kept


BATCHED_CASES = [
    ("same class suppressed", [0, 0], [0]),
    ("different classes both survive", [0, 5], [0, 1]),
    ("high class ids both survive", [78, 79], [0, 1]),
]


@pytest.mark.parametrize(("name", "classes", "kept"), BATCHED_CASES, ids=[c[0] for c in BATCHED_CASES])
def test_batched_nms_is_class_aware(name: str, classes: list[int], kept: list[int]) -> None:
    xyxy = boxes((100, 100, 300, 400), (102, 101, 301, 402))
    conf = scores(0.9, 0.8)

    result = batched_nms(xyxy, conf, np.array(classes, dtype=np.int64), 0.45)

    assert result.tolist() == kept


def test_batched_nms_with_negative_coordinates_keeps_classes_apart() -> None:
    xyxy = boxes((-50, -50, 10, 10), (-50, -50, 10, 10), (-50, -50, 10, 10))

    result = batched_nms(xyxy, scores(0.9, 0.8, 0.7), np.array([0, 1, 0], np.int64), 0.5)

    assert result.tolist() == [0, 1]


def test_batched_nms_empty() -> None:
    result = batched_nms(boxes(), scores(), np.zeros((0,), np.int64), 0.5)

    assert result.shape == (0,)
