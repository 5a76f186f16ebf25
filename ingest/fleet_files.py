"""Writing a camera fleet: `cameras.yaml` and CSV text that `ingest.fleet` reads back to the same cameras, and
an atomic file write (temporary file beside the target, fsync, `os.replace`).

YAML rows hold the fields that differ from their defaults, in the model's order, every string double-quoted
(JSON's escapes are YAML's), so the file reads back the same with no YAML type guessing (`"001"`, `"yes"`).
CSV rows hold every column; `tags` and `arming` are `;`-separated, an empty cell is the default.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import tempfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel

from core.errors import GridwatchError
from ingest.cameras import Camera

COLUMNS: tuple[str, ...] = tuple(Camera.model_fields)
LIST_SEPARATOR = ";"
BURST_ONLY = frozenset({"burst_frames", "burst_span_s"})
CONTINUOUS_ONLY = frozenset({"sample_fps", "window_s"})
# characters YAML reads as line breaks or refuses inside a double-quoted scalar, which JSON leaves as they are
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]')


def _yaml_string(text: str) -> str:
    if not _NEEDS_ESCAPE.search(text):
        return f'"{text}"'
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))


def _yaml_float(value: float) -> str:
    text = repr(value)  # the shortest text that reads back as the same float
    if "e" in text and "." not in text:  # YAML 1.1 (PyYAML) reads `1e+16` as a string, `1.0e+16` as a float
        text = text.replace("e", ".0e", 1)
    return text


def _yaml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _yaml_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        items = (_yaml_float(item) if isinstance(item, float) else _yaml_string(str(item)) for item in value)
        return "[" + ", ".join(items) + "]"
    return _yaml_string(str(value))


def yaml_row(row: BaseModel, always: Collection[str] = ("id",)) -> str:
    """One list item of a YAML registry: the fields that differ from their defaults (and `always`), in the
    model's order."""
    lines = []
    for name, field in type(row).model_fields.items():
        value = getattr(row, name)
        if value != field.default or name in always:
            lines.append(f"{name}: {_yaml_value(value)}")
    return "  - " + "\n    ".join(lines) + "\n"


def render_yaml(cameras: Iterable[Camera]) -> str:
    """`cameras.yaml` text for these cameras."""
    return "cameras:\n" + "".join(yaml_row(camera, ("id", "url")) for camera in cameras)


def _csv_cell(camera: Camera, name: str) -> str:
    value = getattr(camera, name)
    if value is None or (name in BURST_ONLY and camera.mode != "burst"):
        return ""
    if name in CONTINUOUS_ONLY and camera.mode != "continuous":
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return str(value)


def render_csv(cameras: Iterable[Camera]) -> str:
    """CSV text for these cameras: a header row of every column, then one row a camera."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([_csv_cell(camera, name) for name in COLUMNS] for camera in cameras)
    return out.getvalue()


def render(cameras: Sequence[Camera], fmt: str) -> str:
    return render_csv(cameras) if fmt == "csv" else render_yaml(cameras)


def write_atomic(path: Path, text: str, *, private: bool = False) -> None:
    """Replace `path` by `text` all at once: readers see the old file or the new one, never a part. Mode 0600
    with `private`, else the old file's mode (0644 for a new file)."""
    if private:
        mode = 0o600
    else:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            mode = 0o644
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    except OSError as exc:
        raise GridwatchError(f"{path}: cannot write: {exc.strerror}") from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(mode)
        tmp.replace(path)  # os.replace: atomic within one file system
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
