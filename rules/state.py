"""Rule state per (rule, camera): what a rule remembers between visits, behind a small interface.

States are keyed by the rule's fingerprint (a digest of its whole definition), not its id: after a hot reload
an unchanged rule finds its state again and a changed one starts afresh. `retain` then drops the states of
fingerprints no longer running. The in-memory store is the embedded default; a shared store (Redis) for several
workers implements the same protocol.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Protocol, TypeVar

logger = logging.getLogger(__name__)

S = TypeVar("S")


class RuleStateStore(Protocol):
    """Thread-safe: patrol workers visit different cameras at once (never one camera twice at once)."""

    def get(self, fingerprint: str, camera_id: str) -> object | None: ...

    def put(self, fingerprint: str, camera_id: str, state: object) -> None: ...

    def retain(self, fingerprints: Iterable[str]) -> int:
        """Forget the states of every other fingerprint; returns how many states were dropped."""
        ...

    def __len__(self) -> int: ...


class InMemoryRuleState:
    """Rule state in this process's memory, one entry per (fingerprint, camera) that has state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, dict[str, object]] = {}

    def get(self, fingerprint: str, camera_id: str) -> object | None:
        with self._lock:
            by_camera = self._states.get(fingerprint)
            return None if by_camera is None else by_camera.get(camera_id)

    def put(self, fingerprint: str, camera_id: str, state: object) -> None:
        with self._lock:
            self._states.setdefault(fingerprint, {})[camera_id] = state

    def retain(self, fingerprints: Iterable[str]) -> int:
        keep = set(fingerprints)
        with self._lock:
            gone = [fp for fp in self._states if fp not in keep]
            dropped = sum(len(self._states.pop(fp)) for fp in gone)
        if dropped:
            logger.info("rule state: dropped %d states of %d changed or removed rules", dropped, len(gone))
        return dropped

    def items(self, fingerprint: str) -> list[tuple[str, object]]:
        """(camera id, state) of one rule, e.g. to save a learned baseline."""
        with self._lock:
            return list(self._states.get(fingerprint, {}).items())

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._states.values())
