"""Where the real test assets live: shared models and footage, and the photos inside the ultralytics wheel."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dir_from_env(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else default


def model_mirror() -> Path:
    return _dir_from_env("GRIDWATCH_MODEL_MIRROR", ROOT.parent / "shared" / "models")


def media_mirror() -> Path:
    return _dir_from_env("GRIDWATCH_MEDIA_MIRROR", ROOT.parent / "shared" / "media")


def require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"test asset missing: {path} (set GRIDWATCH_MODEL_MIRROR / GRIDWATCH_MEDIA_MIRROR)")
    return path


def ultralytics_asset(name: str) -> Path:
    """`bus.jpg` / `zidane.jpg` from the installed ultralytics wheel, found without importing it."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        pytest.fail("the ultralytics wheel is not installed: `make test` installs it with --no-deps")
    return require(Path(spec.origin).parent / "assets" / name)
