from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.errors import ModelError
from detectors.manifest import ModelManifest
from gridwatch.modelstore import fetch_model, resolve_model, sha256_file, verify_model
from tests.detectors.conftest import MODELS_DIR
from tests.support.assets import model_mirror

YOLOX_MANIFEST = MODELS_DIR / "yolox-nano.yaml"
SSD_MANIFEST = MODELS_DIR / "ssd-mobilenet-v2.yaml"


def corrupt_copy(source: Path, dest: Path, offset: int = 1000) -> Path:
    """A copy of `source` with one byte flipped."""
    data = bytearray(source.read_bytes())
    data[offset] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def test_sha256_file_matches_the_manifest(yolox_path: Path, yolox_manifest: ModelManifest) -> None:
    assert sha256_file(yolox_path) == yolox_manifest.sha256


def test_fetch_from_a_directory_mirror_then_refetch_is_a_no_op(tmp_path: Path, yolox_manifest: ModelManifest) -> None:
    # given
    dest = tmp_path / "models"

    # when
    first = fetch_model(YOLOX_MANIFEST, dest, str(model_mirror()))
    stat = first.stat()
    second = fetch_model(YOLOX_MANIFEST, dest, str(tmp_path / "no-such-mirror"))

    # then
    assert first == second == dest / "yolox_nano.onnx"
    assert sha256_file(first) == yolox_manifest.sha256
    assert (second.stat().st_ino, second.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert sorted(p.name for p in dest.iterdir()) == ["yolox_nano.onnx"]  # no temp file left behind


def test_corrupt_mirror_copy_raises_and_leaves_nothing(
    tmp_path: Path, yolox_path: Path, yolox_manifest: ModelManifest
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    corrupt_copy(yolox_path, mirror / yolox_path.name)
    dest = tmp_path / "models"

    with pytest.raises(ModelError) as caught:
        fetch_model(YOLOX_MANIFEST, dest, str(mirror))

    message = str(caught.value)
    assert f"expected sha256 {yolox_manifest.sha256}" in message
    assert f"actual {sha256_file(mirror / yolox_path.name)}" in message
    assert str(dest / "yolox_nano.onnx") in message
    assert list(dest.iterdir()) == []


def test_a_corrupt_local_file_is_fetched_again(tmp_path: Path, yolox_path: Path) -> None:
    dest = tmp_path / "models"
    dest.mkdir()
    corrupt_copy(yolox_path, dest / yolox_path.name)

    fetched = fetch_model(YOLOX_MANIFEST, dest, str(model_mirror()))

    verify_model(fetched, sha256_file(yolox_path))


def test_missing_file_in_the_mirror(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        fetch_model(YOLOX_MANIFEST, tmp_path / "models", str(tmp_path))


def test_no_mirror_and_no_public_url_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="set GRIDWATCH_MODEL_MIRROR"):
        fetch_model(SSD_MANIFEST, tmp_path / "models", None)


@pytest.fixture
def http_mirror() -> Iterator[str]:
    """A real HTTP server on loopback serving the shared models directory."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(model_mirror()))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fetch_from_an_http_mirror(tmp_path: Path, http_mirror: str, yolox_manifest: ModelManifest) -> None:
    fetched = fetch_model(YOLOX_MANIFEST, tmp_path, http_mirror)

    assert sha256_file(fetched) == yolox_manifest.sha256


def test_http_mirror_without_the_file(tmp_path: Path, http_mirror: str) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    renamed = YOLOX_MANIFEST.read_text(encoding="utf-8").replace("file: yolox_nano.onnx", "file: absent.onnx")
    (manifests / "yolox-nano.yaml").write_text(renamed, encoding="utf-8")

    with pytest.raises(ModelError, match="HTTP 404"):
        fetch_model(manifests / "yolox-nano.yaml", tmp_path, http_mirror)


def test_verify_model_names_path_and_hashes(tmp_path: Path, yolox_path: Path, yolox_manifest: ModelManifest) -> None:
    expected = yolox_manifest.sha256
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ModelError) as caught:
        verify_model(missing, expected)
    assert str(caught.value) == f"{missing}: model file missing (expected sha256 {expected}, actual: no file)"

    bad = corrupt_copy(yolox_path, tmp_path / "bad.onnx")
    with pytest.raises(ModelError) as caught:
        verify_model(bad, expected)
    actual = sha256_file(bad)
    assert str(caught.value) == f"{bad}: model file corrupt (expected sha256 {expected}, actual {actual})"


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A models/ directory holding the shipped manifests and no weights."""
    folder = tmp_path / "models"
    folder.mkdir()
    for manifest in (YOLOX_MANIFEST, SSD_MANIFEST):
        shutil.copy(manifest, folder / manifest.name)
    return folder


def test_resolve_model_without_weights_gives_the_fix(models_dir: Path) -> None:
    with pytest.raises(ModelError, match="model weights missing; run: gridwatch models fetch yolox-nano"):
        resolve_model(models_dir, "yolox-nano")


def test_resolve_model_with_corrupt_weights_gives_the_fix(models_dir: Path, yolox_path: Path) -> None:
    corrupt_copy(yolox_path, models_dir / yolox_path.name)

    with pytest.raises(ModelError, match=r"corrupt .*; run: gridwatch models fetch yolox-nano"):
        resolve_model(models_dir, "yolox-nano")


def test_resolve_unknown_model_lists_the_known_ones(models_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"known models: \['ssd-mobilenet-v2', 'yolox-nano'\]"):
        resolve_model(models_dir, "yolo-huge")


def test_resolve_after_fetch(models_dir: Path) -> None:
    fetch_model(models_dir / "yolox-nano.yaml", models_dir, str(model_mirror()))

    manifest, weights = resolve_model(models_dir, "yolox-nano")

    assert manifest.name == "yolox-nano"
    assert weights == models_dir / "yolox_nano.onnx"
