"""Real detectors, manifests and pictures shared by the detector tests (session scoped: models load once)."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from core.types import Detections, Image
from detectors.detector import Detector
from detectors.manifest import ModelManifest, load_manifest
from detectors.session import create_session
from gridwatch.export import export_model
from tests.detectors.ultralytics_support import build_yolo11n

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def read_bgr(path: Path) -> Image:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot read {path}"
    return np.asarray(image, dtype=np.uint8)


def decode_frame(path: Path, index: int) -> Image:
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
    raise AssertionError(f"{path} has fewer than {index + 1} frames")


def labelled(detector: Detector, detections: Detections) -> list[str]:
    return [detector.labels[int(c)] for c in detections.class_id]


@pytest.fixture(scope="session")
def yolox_manifest() -> ModelManifest:
    return load_manifest(MODELS_DIR / "yolox-nano.yaml")


@pytest.fixture(scope="session")
def ssd_manifest() -> ModelManifest:
    return load_manifest(MODELS_DIR / "ssd-mobilenet-v2.yaml")


@pytest.fixture(scope="session")
def yolox(yolox_path: Path, yolox_manifest: ModelManifest) -> Detector:
    return Detector(create_session(yolox_path), yolox_manifest)


@pytest.fixture(scope="session")
def ssd(ssd_path: Path, ssd_manifest: ModelManifest) -> Detector:
    return Detector(create_session(ssd_path), ssd_manifest)


REFERENCE_PICTURES = ["bus", "zidane", "footage 0", "footage 300", "footage 700"]


@pytest.fixture
def picture(request: pytest.FixtureRequest, bus: Image, zidane: Image, footage_path: Path) -> Image:
    """The picture the test's (indirect) parameter names: "bus", "zidane" or "footage N" (frame N)."""
    name = str(request.param)
    if name == "bus":
        return bus
    if name == "zidane":
        return zidane
    return decode_frame(footage_path, int(name.split()[1]))


@pytest.fixture(scope="session")
def bus(bus_jpg: Path) -> Image:
    return read_bgr(bus_jpg)


@pytest.fixture(scope="session")
def zidane(zidane_jpg: Path) -> Image:
    return read_bgr(zidane_jpg)


@pytest.fixture(scope="session")
def footage_frame(footage_path: Path) -> Image:
    return decode_frame(footage_path, 100)


@pytest.fixture(scope="session")
def yolo11n_export(tmp_path_factory: pytest.TempPathFactory, bus: Image, zidane: Image) -> tuple[Path, Path]:
    """(the .pt, the models dir holding `yolo11n.onnx` + `yolo11n.yaml` from `export_model`), once a session."""
    work = tmp_path_factory.mktemp("yolo11n")
    weights = build_yolo11n(work, [bus, zidane])
    export_model(weights, work / "models")
    return weights, work / "models"


@pytest.fixture(scope="session")
def yolo11n(yolo11n_export: tuple[Path, Path]) -> Detector:
    _, models_dir = yolo11n_export
    manifest = load_manifest(models_dir / "yolo11n.yaml")
    return Detector(create_session(models_dir / manifest.file), manifest, conf_threshold=0.25, nms_iou=0.7)
