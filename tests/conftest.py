from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.assets import media_mirror, model_mirror, require, ultralytics_asset
from tests.support.rtsp import rtsp_server  # noqa: F401  (session fixture)


@pytest.fixture(scope="session")
def yolox_path() -> Path:
    return require(model_mirror() / "yolox_nano.onnx")


@pytest.fixture(scope="session")
def ssd_path() -> Path:
    return require(model_mirror() / "ssd_mobilenet_v2_coco_quant_qdq.onnx")


@pytest.fixture(scope="session")
def footage_path() -> Path:
    return require(media_mirror() / "vtest_h264.mp4")


@pytest.fixture(scope="session")
def bus_jpg() -> Path:
    return ultralytics_asset("bus.jpg")


@pytest.fixture(scope="session")
def zidane_jpg() -> Path:
    return ultralytics_asset("zidane.jpg")
