"""The seam between whoever finds events (patrol) and whoever keeps them (intake)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from core.events import Event


class EventSink(Protocol):
    """Receives an event and the bytes of its evidence, keyed by `Evidence.key`.

    Implementations must be thread-safe: patrol workers call `emit` concurrently.
    """

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None: ...
