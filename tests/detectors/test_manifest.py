from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.errors import ConfigError
from detectors.manifest import ModelManifest, load_manifest, parse_manifest
from tests.detectors.conftest import MODELS_DIR
from tests.support.assets import model_mirror

VALID = """\
name: tiny
version: "1"
file: tiny.onnx
sha256: 695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14
family: yolox
input_size: [416, 416]
labels: [person, bus]
license: Apache-2.0
source_url: https://example.org/tiny.onnx
"""


def coco_names() -> list[str]:
    lines = (model_mirror() / "coco_labels.txt").read_text(encoding="utf-8").splitlines()
    return [line.split(maxsplit=1)[1].strip() for line in lines if line.strip()]


@pytest.mark.parametrize("name", ["yolox-nano", "ssd-mobilenet-v2"])
def test_shipped_manifests_match_the_shared_weights_and_labels(name: str) -> None:
    manifest = load_manifest(MODELS_DIR / f"{name}.yaml")

    weights = model_mirror() / manifest.file
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == manifest.sha256
    assert manifest.labels == coco_names()
    assert manifest.name == name


def test_ssd_class_ids_follow_coco_labels_numbering(ssd_manifest: ModelManifest) -> None:
    lines = (model_mirror() / "coco_labels.txt").read_text(encoding="utf-8").splitlines()
    assert ssd_manifest.class_ids == [int(line.split()[0]) for line in lines if line.strip()]


def test_valid_manifest_parses() -> None:
    manifest = parse_manifest(VALID, "tiny.yaml")

    assert manifest.input_size == (416, 416)
    assert manifest.dynamic_batch is False
    assert manifest.class_ids is None


BAD = [
    # (what, replace this, with this, expected problem line)
    (
        "unknown key",
        "license: Apache-2.0\n",
        "license: Apache-2.0\nlicence: MIT\n",
        "bad.yaml:9:1: licence: extra key",
    ),
    ("short sha256", "sha256: 695e", "sha256: 695", "bad.yaml:4:9: sha256: String should match pattern"),
    ("unknown family", "family: yolox", "family: yolo", "bad.yaml:5:9: family: Input should be"),
    (
        "path in file",
        "file: tiny.onnx",
        "file: ../tiny.onnx",
        "bad.yaml:3:7: file: Value error, must be a bare",
    ),
    (
        "bad size",
        "input_size: [416, 416]",
        "input_size: [416]",
        "bad.yaml:6:13: input_size[1]: Field required",
    ),
    (
        "class ids",
        "labels: [person, bus]",
        "labels: [person, bus]\nclass_ids: [0]",
        "bad.yaml:1:1: (top): Value",
    ),
]


@pytest.mark.parametrize(("what", "old", "new", "expected"), BAD, ids=[b[0] for b in BAD])
def test_invalid_manifest_reports_file_line_col(what: str, old: str, new: str, expected: str) -> None:
    text = VALID.replace(old, new)
    assert text != VALID

    with pytest.raises(ConfigError) as caught:
        parse_manifest(text, "bad.yaml")

    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_load_manifest_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml:1:1: cannot read"):
        load_manifest(tmp_path / "nope.yaml")
