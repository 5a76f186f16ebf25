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
from detectors.ssd import raw_to_label_index
from tests.detectors.conftest import REFERENCE_PICTURES, labelled
from tests.detectors.matching import assert_same_detections


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


def ssd_reference(session: onnxruntime.InferenceSession, image: Image, manifest: ModelManifest) -> Detections:
    """The graph's own detections, written out apart from `detectors.ssd`: plain resize to 300x300 RGB uint8,
    the post-process node's first `count` rows, normalised (ymin, xmin, ymax, xmax) times the picture's size,
    raw class ids looked up in the manifest's `class_ids` (ids it does not list dropped), score > 0.35."""
    h, w = image.shape[:2]
    rgb = cv2.cvtColor(cv2.resize(image, (300, 300), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    boxes, classes, scores, count = session.run(None, {session.get_inputs()[0].name: rgb[None]})
    n = int(count[0])
    raw_ids = [round(float(c)) for c in classes[0, :n]]
    known = manifest.class_ids or list(range(len(manifest.labels)))
    rows = [i for i in range(n) if scores[0, i] > 0.35 and raw_ids[i] in known]
    xyxy = np.array([boxes[0, i][[1, 0, 3, 2]] * [w, h, w, h] for i in rows], np.float32).reshape(-1, 4)
    return Detections(
        xyxy=np.clip(xyxy, 0, [w, h, w, h]).astype(np.float32),
        confidence=np.array([scores[0, i] for i in rows], np.float32),
        class_id=np.array([known.index(raw_ids[i]) for i in rows], np.int64),
    )


@pytest.mark.parametrize("picture", REFERENCE_PICTURES, indirect=True)
def test_decoding_agrees_with_the_graphs_own_detections(
    picture: Image, ssd_path: Path, ssd_manifest: ModelManifest
) -> None:
    session = create_session(ssd_path)
    # the graph already ran its NMS; ours on top is switched off to compare decoding alone
    ours = Detector(session, ssd_manifest, conf_threshold=0.35, nms_iou=0.999)
    want = ssd_reference(session, picture, ssd_manifest)

    got = ours.detect(picture)

    assert len(want) >= 1, "the picture should give boxes to compare"
    assert_same_detections(want, got)
