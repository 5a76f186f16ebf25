"""Event gate: whether a fired verdict opens a new event or falls inside the cooldown of the last one.

Later work adds N-of-M confirmation and open / update / close on top of this.
"""

from __future__ import annotations

import logging
import threading

from core.types import Verdict

logger = logging.getLogger(__name__)

GateKey = tuple[str, str, str | None]  # rule id, camera id, zone


class EventGate:
    """Cooldown per (rule id, camera id, zone), counted from the last admitted event on monotonic time.

    Thread-safe: patrol workers call `admit` concurrently.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._quiet_until: dict[GateKey, float] = {}

    def admit(self, verdict: Verdict, cooldown_s: float, now_monotonic: float) -> bool:
        """True when `verdict` fired and its key is out of cooldown; the cooldown then restarts at `now`."""
        if not verdict.fired:
            return False
        key: GateKey = (verdict.rule_id, verdict.camera_id, verdict.zone)
        with self._lock:
            until = self._quiet_until.get(key)
            if until is not None and now_monotonic < until:
                return False
            self._quiet_until[key] = now_monotonic + cooldown_s
            return True

    def reopen(self, verdict: Verdict) -> None:
        """Undo an admission whose event could not be delivered, so the next visit may try again."""
        with self._lock:
            self._quiet_until.pop((verdict.rule_id, verdict.camera_id, verdict.zone), None)

    def expire(self, now_monotonic: float) -> int:
        """Forget keys whose cooldown has passed (they would be admitted anyway); returns how many."""
        with self._lock:
            done = [k for k, until in self._quiet_until.items() if until <= now_monotonic]
            for key in done:
                del self._quiet_until[key]
            return len(done)

    def __len__(self) -> int:
        return len(self._quiet_until)
