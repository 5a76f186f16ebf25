from __future__ import annotations

import numpy as np

from core.types import Image
from detectors.detector import Detector
from detectors.ssd import raw_to_label_index
from tests.detectors.conftest import labelled


def test_raw_ids_with_gaps_map_to_label_indices() -> None:
    table = raw_to_label_index([0, 1, 3, 7], 4)

    assert table.tolist() == [0, 1, -1, 2, -1, -1, -1, 3]
    assert raw_to_label_index(None, 3).tolist() == [0, 1, 2]


def test_bus_jpg_finds_the_bus_and_people(ssd: Detector, bus: Image) -> None:
    found = ssd.detect(bus)

    names = labelled(ssd, found)
    assert "bus" in names
    assert names.count("person") >= 3
    bus_box = found.xyxy[names.index("bus")]
    assert bus_box[2] - bus_box[0] > 0.8 * bus.shape[1]


def test_labels_mean_the_same_as_in_yolox(ssd: Detector, yolox: Detector, zidane: Image) -> None:
    # zidane.jpg: two people and a tie; raw SSD id 31 (tie) sits at label index 27 after the id gaps
    ssd_names = set(labelled(ssd, ssd.detect(zidane)))
    yolox_names = set(labelled(yolox, yolox.detect(zidane)))

    assert ssd.labels == yolox.labels
    assert {"person", "tie"} <= ssd_names
    assert {"person", "tie"} <= yolox_names


def test_footage_frame_finds_pedestrians(ssd: Detector, footage_frame: Image) -> None:
    found = ssd.detect(footage_frame)

    assert labelled(ssd, found).count("person") >= 3
    assert np.all(found.xyxy[:, 2] <= footage_frame.shape[1])
    assert np.all(found.xyxy[:, 3] <= footage_frame.shape[0])
