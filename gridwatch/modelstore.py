"""Model weights on disk: fetch from a mirror or upstream, check sha256, resolve a manifest to its file.

This is composition-side I/O: `detectors/` never touches the network or the file system for weights.
A mirror is a directory or an http(s) base URL serving `{mirror}/{file}` (`GRIDWATCH_MODEL_MIRROR`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import httpx

from core.errors import ConfigError, ModelError
from core.redact import redact_text, sanitize_url
from detectors.manifest import ModelManifest, load_manifest

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model(path: Path, sha256: str) -> None:
    """Raise ModelError naming the path, the expected and the actual sha256 unless `path` matches."""
    if not path.is_file():
        raise ModelError(f"{path}: model file missing (expected sha256 {sha256}, actual: no file)")
    actual = sha256_file(path)
    if actual != sha256:
        raise ModelError(f"{path}: model file corrupt (expected sha256 {sha256}, actual {actual})")


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _source_for(manifest: ModelManifest, mirror: str | None) -> str:
    if mirror:
        return f"{mirror.rstrip('/')}/{manifest.file}" if _is_url(mirror) else str(Path(mirror) / manifest.file)
    if manifest.download_url:
        return manifest.download_url
    raise ModelError(
        f"model {manifest.name}: no public URL serves these exact weights ({manifest.file}, from "
        f"{manifest.source_url}); set GRIDWATCH_MODEL_MIRROR to a directory or URL that has them"
    )


def _copy_into(source: str, out: BinaryIO) -> None:
    if _is_url(source):
        try:
            with httpx.stream("GET", source, timeout=HTTP_TIMEOUT, follow_redirects=True) as response:
                if response.status_code != httpx.codes.OK:
                    raise ModelError(f"{sanitize_url(source)}: HTTP {response.status_code}")
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
        except httpx.HTTPError as exc:
            raise ModelError(f"{sanitize_url(source)}: {redact_text(str(exc))}") from None
        return
    try:
        with Path(source).open("rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
    except OSError as exc:
        raise ModelError(f"{source}: cannot read: {exc.strerror}") from None


@contextmanager
def _temp_beside(target: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A temporary file in the target's directory (so the final rename is atomic), removed on failure."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh, tmp
    finally:
        tmp.unlink(missing_ok=True)


def fetch_model(manifest_path: Path, dest_dir: Path, mirror: str | None) -> Path:
    """Make `dest_dir/{manifest.file}` hold the manifest's weights, checked against its sha256.

    A file already there with the right hash is kept as is. Otherwise the weights are copied from
    `mirror` (a directory or an http(s) base URL), else from the manifest's `download_url`, into a
    temporary file that replaces the target only once its hash is right.
    """
    manifest = load_manifest(manifest_path)
    target = dest_dir / manifest.file
    if target.is_file():
        actual = sha256_file(target)
        if actual == manifest.sha256:
            logger.info("model %s: %s already present, sha256 ok", manifest.name, target)
            return target
        logger.warning("model %s: %s has sha256 %s, fetching again", manifest.name, target, actual)
    source = _source_for(manifest, mirror)
    logger.info("model %s: fetching %s from %s", manifest.name, manifest.file, sanitize_url(source))
    dest_dir.mkdir(parents=True, exist_ok=True)
    with _temp_beside(target) as (out, tmp):
        _copy_into(source, out)
        out.close()
        actual = sha256_file(tmp)
        if actual != manifest.sha256:
            raise ModelError(
                f"{sanitize_url(source)}: fetched weights for {target} are corrupt "
                f"(expected sha256 {manifest.sha256}, actual {actual})"
            )
        tmp.replace(target)
    return target


def resolve_model(models_dir: Path, name: str) -> tuple[ModelManifest, Path]:
    """The manifest `models_dir/{name}.yaml` and its checked weights `models_dir/{file}`."""
    manifest_path = models_dir / f"{name}.yaml"
    if not manifest_path.is_file():
        known = sorted(p.stem for p in models_dir.glob("*.yaml"))
        raise ModelError(f"{manifest_path}: no manifest for model {name!r}; known models: {known}")
    try:
        manifest = load_manifest(manifest_path)
    except ConfigError as exc:
        raise ModelError(f"invalid model manifest:\n{exc}") from None
    weights = models_dir / manifest.file
    if not weights.is_file():
        raise ModelError(f"{weights}: model weights missing; run: gridwatch models fetch {name}")
    try:
        verify_model(weights, manifest.sha256)
    except ModelError as exc:
        raise ModelError(f"{exc}; run: gridwatch models fetch {name}") from None
    return manifest, weights
