"""`count_anomaly`: the count in a zone far from what is usual there at this hour of the week.

Each (rule, camera) learns a baseline per hour of the week in the rule's time zone (168 slots): the last `history`
counts of that slot, sampled at most once per `sample_every_s` so that a slot's history spans weeks rather than
the last few minutes of one afternoon. A visit fires when its count is at least `threshold` robust z-scores
(median and MAD, the MAD scaled by 1.4826 and floored at 0.5) and at least `min_delta` detections away from the
slot's median, in the rule's `direction`, once the slot holds `min_history` samples.

A learned count is clipped to the slot's normal band (median +- max(min_delta, threshold x MAD)) once the slot is
warm: an anomaly is learned only as the edge of normal, so a one-off event barely moves the baseline, while a
lasting change (a new bus stop) becomes normal after about history / 2 samples of its slot.

The state is one uint8 array `(168, 1 + history)` per camera: column 0 counts the writes of each slot's ring
buffer, columns 1.. hold its counts (saturating at 255).
"""

from __future__ import annotations

import base64
import binascii
import logging
import statistics
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from core.types import IntArray, Observation, Verdict
from rules.kinds.base import CompileContext, Evaluation, KindSpec
from rules.schema import BaseRule, ZoneFilter
from rules.zone import ZoneMatcher

logger = logging.getLogger(__name__)

SLOTS = 7 * 24  # hours of the week, Monday 00:00 first
MAX_HISTORY = 64  # a slot's write counter runs to 2 x history - 1, which must fit a uint8
MAD_SCALE = 1.4826  # MAD x this estimates the standard deviation of normally distributed counts
MAD_FLOOR = 0.5  # a constant baseline (MAD 0) would make every change an infinite z-score
SATURATE = 255
STATE_VERSION = 1
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

Direction = Literal["high", "low", "both"]


class CountAnomalyRule(BaseRule, ZoneFilter):
    """Fires when the count in the zone is far from its learned usual for this camera and hour of the week."""

    kind: Literal["count_anomaly"]
    direction: Direction = "high"
    min_history: int = Field(default=8, ge=1, le=MAX_HISTORY)
    threshold: float = Field(default=4.0, gt=0.0, le=100.0)
    min_delta: float = Field(default=3.0, ge=0.0, le=float(SATURATE))
    history: int = Field(default=16, ge=2, le=MAX_HISTORY)
    sample_every_s: float = Field(default=900.0, ge=0.0, le=3600.0)

    @model_validator(mode="after")
    def _history_holds_min_history(self) -> CountAnomalyRule:
        if self.min_history > self.history:
            raise PydanticCustomError(
                "history_too_short",
                "min_history {min_history} is more than history {history}: a slot keeps only {history} samples, "
                "so the rule could never fire",
                {"min_history": self.min_history, "history": self.history},
            )
        return self


@dataclass(frozen=True, slots=True)
class Baseline:
    """The learned counts of one rule at one camera. Never changed in place: learning returns a new one, so a
    saver may read a state while the patrol evaluates the next visit."""

    table: NDArray[np.uint8]  # (SLOTS, 1 + history): column 0 counts writes, columns 1.. hold counts
    last_sample: int = -1  # the sample interval (epoch // sample_every_s) of the last learned count

    @classmethod
    def empty(cls, history: int) -> Baseline:
        return cls(np.zeros((SLOTS, 1 + history), np.uint8))

    @property
    def history(self) -> int:
        return int(self.table.shape[1]) - 1

    def values(self, slot: int) -> NDArray[np.uint8]:
        """The counts a slot holds, in no particular order."""
        return self.table[slot, 1 : 1 + min(int(self.table[slot, 0]), self.history)]

    def learned(self, slot: int, count: int, sample: int) -> Baseline:
        """A copy with `count` written over the oldest count of the slot's ring once it is full."""
        table, h = self.table.copy(), self.history
        writes = int(table[slot, 0])
        table[slot, 1 + (writes if writes < h else writes - h)] = min(max(count, 0), SATURATE)
        table[slot, 0] = writes + 1 if writes + 1 < 2 * h else h
        return Baseline(table, sample)


@dataclass(frozen=True, slots=True)
class SlotStats:
    samples: int
    median: float
    mad: float  # scaled and floored


def slot_stats(values: NDArray[np.uint8]) -> SlotStats:
    if len(values) == 0:
        return SlotStats(0, 0.0, MAD_FLOOR)
    x = values.tolist()  # at most 64 small counts: plain Python is several times faster than numpy here
    median = float(statistics.median(x))
    mad = MAD_SCALE * float(statistics.median([abs(v - median) for v in x]))
    return SlotStats(len(values), median, max(mad, MAD_FLOOR))


def hour_of_week(at: datetime, tz: ZoneInfo) -> int:
    local = at.astimezone(tz)
    return local.weekday() * 24 + local.hour


def slot_name(slot: int) -> str:
    return f"{DAYS[slot // 24]} {slot % 24:02d}:00"


class CountAnomaly:
    """A `CountAnomalyRule` bound to a model's labels. Its state is a `Baseline` per camera."""

    def __init__(self, rule: CountAnomalyRule, matcher: ZoneMatcher) -> None:
        self.rule = rule
        self.matcher = matcher
        self._tz = ZoneInfo(rule.timezone)

    def _count(self, obs: Observation) -> tuple[float, int, IntArray]:
        """The visit's count (the median over a burst's frames) and the frame (negative index) whose count is
        nearest to it (of two as near, the larger count, then the later frame), with its counted detections."""
        found = []
        for f in obs.frames:
            height, width = int(f.image.shape[0]), int(f.image.shape[1])
            found.append(np.flatnonzero(self.matcher.match(width, height, f.detections)).astype(np.int64))
        counts = [len(s) for s in found]
        count = float(statistics.median(counts))
        nearest = min(range(len(counts)), key=lambda i: (abs(counts[i] - count), -counts[i], -i))
        return count, nearest - len(counts), found[nearest]

    def _band(self, stats: SlotStats) -> float:
        return max(self.rule.min_delta, self.rule.threshold * stats.mad)

    def _fires(self, count: float, stats: SlotStats) -> bool:
        rule = self.rule
        if stats.samples < rule.min_history:
            return False
        delta = count - stats.median
        z = delta / stats.mad
        high = delta >= rule.min_delta and z >= rule.threshold
        low = -delta >= rule.min_delta and -z >= rule.threshold
        return (high and rule.direction != "low") or (low and rule.direction != "high")

    def _learn(self, baseline: Baseline, obs: Observation, slot: int, count: float, stats: SlotStats) -> Baseline:
        every = self.rule.sample_every_s
        sample = int(obs.at.timestamp() // every) if every > 0 else baseline.last_sample + 1
        if sample == baseline.last_sample:
            return baseline
        if stats.samples >= self.rule.min_history:
            band = self._band(stats)
            count = min(max(count, stats.median - band), stats.median + band)
        return baseline.learned(slot, round(count), sample)

    def _reason(self, obs: Observation, subjects: IntArray, frame: int, slot: int, stats: SlotStats, z: float) -> str:
        what = f"{self.matcher.describe(obs.frames[frame].detections.class_id[subjects])} in zone {self.rule.zone.name}"
        if len(obs.frames) > 1:
            what += f" (nearest the median of {len(obs.frames)} frames)"
        if stats.samples < self.rule.min_history:
            return f"{what}; learning {slot_name(slot)} ({stats.samples} of {self.rule.min_history} samples)"
        return f"{what}, usual for {slot_name(slot)} is {stats.median:g} (MAD {stats.mad:.1f}, z {z:.1f})"

    def evaluate(self, obs: Observation, state: object | None) -> Evaluation:
        h = self.rule.history
        # a state of another shape is from before `history` changed (the fingerprint changed too): start afresh
        baseline = state if isinstance(state, Baseline) and state.table.shape == (SLOTS, 1 + h) else Baseline.empty(h)
        slot = hour_of_week(obs.at, self._tz)
        stats = slot_stats(baseline.values(slot))
        count, frame, subjects = self._count(obs)
        z = (count - stats.median) / stats.mad
        verdict = Verdict(
            rule_id=self.rule.id,
            camera_id=obs.camera_id,
            fired=self._fires(count, stats),
            zone=self.rule.zone.name,
            subjects=subjects,
            measures={
                "count": count,
                "median": stats.median,
                "mad": stats.mad,
                "z": z,
                "slot": float(slot),
                "samples": float(stats.samples),
            },
            reason=self._reason(obs, subjects, frame, slot, stats, z),
            frame=frame,
            overlay=self.matcher.overlay,
        )
        return Evaluation([verdict], self._learn(baseline, obs, slot, count, stats))


def compile_rule(rule: CountAnomalyRule, ctx: CompileContext) -> CountAnomaly | None:
    ids = ctx.class_ids(rule, rule.classes)
    return None if ids is None else CountAnomaly(rule, ZoneMatcher(rule, ids, ctx.labels.names))


def save_state(state: object) -> dict[str, Any]:
    """A `Baseline` as a JSON-able dict: the table's bytes zlib-compressed and base64-encoded."""
    if not isinstance(state, Baseline):
        raise TypeError(f"a count_anomaly state is a Baseline, got {type(state).__name__}")
    table = np.ascontiguousarray(state.table)
    return {
        "version": STATE_VERSION,
        "dtype": str(table.dtype),
        "shape": list(table.shape),
        "last_sample": state.last_sample,
        "table": base64.b64encode(zlib.compress(table.tobytes(), 6)).decode("ascii"),
    }


def load_state(data: dict[str, Any]) -> Baseline:
    """The `Baseline` that `save_state` wrote; ValueError when the dict is not one."""
    if data.get("version") != STATE_VERSION or data.get("dtype") != "uint8":
        raise ValueError(f"not a count_anomaly state of version {STATE_VERSION}: {data.get('version')!r}")
    shape, last, packed = data.get("shape"), data.get("last_sample"), data.get("table")
    if not (isinstance(shape, list) and len(shape) == 2 and shape[0] == SLOTS and isinstance(shape[1], int)):
        raise ValueError(f"count_anomaly state has shape {shape!r}, expected [{SLOTS}, 1 + history]")
    history = shape[1] - 1
    if not 2 <= history <= MAX_HISTORY or not isinstance(last, int) or not isinstance(packed, str):
        raise ValueError(f"count_anomaly state has history {history}, last_sample {last!r}")
    try:
        raw = zlib.decompress(base64.b64decode(packed, validate=True))
    except (binascii.Error, zlib.error) as exc:
        raise ValueError(f"count_anomaly state table is not base64 of zlib data: {exc}") from None
    if len(raw) != SLOTS * (1 + history):
        raise ValueError(f"count_anomaly state table has {len(raw)} bytes, expected {SLOTS * (1 + history)}")
    table = np.frombuffer(raw, np.uint8).reshape(SLOTS, 1 + history).copy()
    if int(table[:, 0].max()) >= 2 * history:
        raise ValueError("count_anomaly state has a slot write counter out of range")
    return Baseline(table, last)


KIND = KindSpec(
    "count_anomaly",
    CountAnomalyRule,
    compile_rule,
    summary="a count in a zone far from its usual for the camera and hour of the week",
    save_state=save_state,
    load_state=load_state,
)
