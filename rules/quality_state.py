"""The per-camera state of a `video_quality` rule, and how it is saved across a restart (JSON-able, base64 arrays)."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.types import Verdict
from rules.quality import GRID, THUMB_SIZE, Reference, Thumb

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QualityState:
    """What one camera's rule keeps between visits (about 6.5 KB): the reference view, the previous visit's
    thumbnail and how many visits in a row showed the same picture (this one included)."""

    reference: Reference | None = None
    previous: Thumb | None = None
    same_visits: int = 1
    # when the picture was last judged (capture time, epoch seconds) and what that judgement said, repeated on the
    # visits until the next check
    checked_at: float = float("-inf")
    verdicts: tuple[Verdict, ...] = ()


def _pack(array: NDArray[Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _unpack(text: object, dtype: type[np.generic], shape: tuple[int, int]) -> NDArray[Any]:
    if not isinstance(text, str):
        raise TypeError(f"expected base64 text, got {type(text).__name__}")
    raw = base64.b64decode(text, validate=True)
    size = int(np.dtype(dtype).itemsize) * shape[0] * shape[1]
    if len(raw) != size:
        raise ValueError(f"expected {size} bytes for a {shape[1]}x{shape[0]} array, got {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def save_state(state: object) -> dict[str, Any]:
    """The reference view as JSON-able data (about 5 KB), so that a restart does not learn the reference afresh
    from what may by then be a shifted or covered view. The previous visit's picture is not kept: after a
    restart the frozen count starts again."""
    if not isinstance(state, QualityState):
        raise TypeError(f"not a video_quality state: {type(state).__name__}")
    ref = state.reference
    if ref is None:
        return {}
    arrays: dict[str, NDArray[Any]] = {
        "thumb": ref.thumb,
        "cell_lap": ref.cell_lap,
        "cell_std": ref.cell_std,
        "cell_mean": ref.cell_mean,
    }
    return {"reference": {"visits": ref.visits, **{k: _pack(v) for k, v in arrays.items()}}}


def load_state(saved: dict[str, Any]) -> QualityState:
    """The state that `save_state` wrote; ValueError, TypeError or KeyError when the dict is not one."""
    packed = saved.get("reference")
    if packed is None:
        return QualityState()
    w, h = THUMB_SIZE
    cells = (GRID[1], GRID[0])
    reference = Reference(
        int(packed["visits"]),
        _unpack(packed["thumb"], np.uint8, (h, w)),
        _unpack(packed["cell_lap"], np.float32, cells),
        _unpack(packed["cell_std"], np.float32, cells),
        _unpack(packed["cell_mean"], np.float32, cells),
    )
    return QualityState(reference)
