"""Check by camera (核查), the patrol's side: when a camera case reaches "handled", its camera is visited again and
the rule that raised it re-evaluated on that visit.

`CameraChecks` holds one pending check per case (camera, rule, zone, since when); the visit pipeline, after a
visit of the camera, answers the checks its frame can judge (captured after the request, the rule evaluated on
it) with a `CheckResult`: whether the rule still fires in the case's zone, and the frame's snapshot. What the
result does to the case (checking with an "after" photo, or rework) is the intake's (`intake.camera_check`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from incidents.evidence import Snapshot

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CheckRequest:
    case_id: str
    camera_id: str
    rule_id: str
    zone: str | None
    since: datetime


@dataclass(frozen=True, slots=True)
class CheckResult:
    request: CheckRequest
    still_there: bool
    snapshot: Snapshot
    at: datetime


class CameraChecks:
    """Pending checks by camera, at most one per case; `on_result` gets each answer. Thread-safe."""

    def __init__(self, on_result: Callable[[CheckResult], None] | None = None) -> None:
        self.on_result = on_result
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, CheckRequest]] = {}  # camera id -> case id -> request
        self.answered = 0

    def add(self, request: CheckRequest) -> bool:
        """False when the case already waits for its check."""
        with self._lock:
            waiting = self._pending.setdefault(request.camera_id, {})
            if request.case_id in waiting:
                return False
            waiting[request.case_id] = request
            return True

    def take(self, camera_id: str, captured_at: datetime, rules: set[str]) -> list[CheckRequest]:
        """The checks of `camera_id` a frame captured at `captured_at`, with `rules` evaluated on it, answers."""
        with self._lock:
            waiting = self._pending.get(camera_id)
            if not waiting:
                return []
            taken = [r for r in waiting.values() if r.since <= captured_at and r.rule_id in rules]
            for r in taken:
                del waiting[r.case_id]
            if not waiting:
                del self._pending[camera_id]
            return taken

    def answer(self, result: CheckResult) -> None:
        with self._lock:
            self.answered += 1
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:  # loop boundary: the case's failure, not the camera's
                logger.exception(
                    "check of case %s by camera %s not applied", result.request.case_id, result.request.camera_id
                )

    def report(self) -> dict[str, int]:
        with self._lock:
            return {"pending": sum(len(v) for v in self._pending.values()), "answered": self.answered}
