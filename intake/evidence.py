"""Content-addressed evidence files: the key is the sha256 of the bytes plus the image extension."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Literal

from core.errors import GridwatchError

logger = logging.getLogger(__name__)

KEY_PATTERN = r"^[0-9a-f]{64}\.(jpg|png)$"
_KEY = re.compile(KEY_PATTERN)
CONTENT_TYPES: dict[str, str] = {"jpg": "image/jpeg", "png": "image/png"}

Ext = Literal["jpg", "png"]


class EvidenceError(GridwatchError, ValueError):
    """An evidence key is malformed or does not match the bytes it names."""


def validate_key(key: str) -> str:
    """Return `key` if it is `<64 lowercase hex>.(jpg|png)`; raise EvidenceError otherwise."""
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise EvidenceError(f"evidence key {key!r}: expected 64 lowercase hex digits then .jpg or .png")
    return key


def key_for(data: bytes, ext: Ext) -> str:
    if ext not in CONTENT_TYPES:
        raise EvidenceError(f"evidence extension {ext!r}: expected one of {sorted(CONTENT_TYPES)}")
    return f"{hashlib.sha256(data).hexdigest()}.{ext}"


def _ext_of(key: str) -> Ext:
    return "png" if validate_key(key).endswith(".png") else "jpg"


def content_type(key: str) -> str:
    """`image/jpeg` or `image/png` for a valid key."""
    return CONTENT_TYPES[_ext_of(key)]


class EvidenceStore:
    """Files under `root/ab/cd/<key>`, written atomically (temp file + os.replace), never rewritten.

    Safe to share between threads and processes: two writers of the same key write the same bytes,
    and the last `os.replace` wins without a reader ever seeing a partial file.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        validate_key(key)
        return self.root / key[0:2] / key[2:4] / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, data: bytes, ext: Ext) -> str:
        key = key_for(data, ext)
        self._write(key, data)
        return key

    def put_keyed(self, key: str, data: bytes) -> str:
        """Store `data` under `key` after checking that `key` is the sha256 of `data`."""
        validate_key(key)
        expected = key_for(data, _ext_of(key))
        if expected != key:
            raise EvidenceError(f"evidence key {key!r} does not match its data (sha256 gives {expected!r})")
        self._write(key, data)
        return key

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def _write(self, key: str, data: bytes) -> None:
        target = self.path(key)
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        logger.debug("stored evidence %s (%d bytes)", key, len(data))
