from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelError
from core.types import Image
from detectors.detector import FAMILIES, Detector
from detectors.manifest import ModelManifest
from detectors.session import create_session


def test_registry_names_the_families() -> None:
    assert sorted(FAMILIES) == ["ssd", "ultralytics", "yolox"]


def test_a_family_without_decoder_fails_loudly(yolox_path: Path, yolox_manifest: ModelManifest) -> None:
    manifest = yolox_manifest.model_copy(update={"family": "centernet"})  # model_copy skips validation

    with pytest.raises(ModelError, match="no decoder for family 'centernet'"):
        Detector(create_session(yolox_path), manifest)


def test_manifest_input_size_must_match_the_graph(yolox_path: Path, yolox_manifest: ModelManifest) -> None:
    manifest = yolox_manifest.model_copy(update={"input_size": (640, 640)})

    with pytest.raises(ModelError, match="graph input is 416x416, manifest input_size is 640x640"):
        Detector(create_session(yolox_path), manifest)


def test_static_batch_model_runs_frame_by_frame(ssd: Detector, bus: Image, zidane: Image) -> None:
    assert ssd.dynamic_batch is False

    results = ssd.detect_batch([bus, zidane, bus])

    assert [len(r) for r in results] == [len(ssd.detect(bus)), len(ssd.detect(zidane)), len(ssd.detect(bus))]


def test_name_and_labels_come_from_the_manifest(yolox: Detector) -> None:
    assert yolox.name == "yolox-nano"
    assert len(yolox.labels) == 80 and yolox.labels[5] == "bus"


def test_threads_share_one_detector(yolox: Detector, bus: Image, zidane: Image, footage_frame: Image) -> None:
    images = [bus, zidane, footage_frame] * 4
    expected = [yolox.detect(image) for image in images]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(yolox.detect, images))

    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got.xyxy, want.xyxy)
        np.testing.assert_array_equal(got.class_id, want.class_id)
