"""The seam between whoever finds events (patrol) and whoever keeps them (intake)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from core.errors import GridwatchError
from core.events import Event


class EventSink(Protocol):
    """Receives an event and the bytes of its evidence, keyed by `Evidence.key`.

    Implementations must be thread-safe: patrol workers call `emit` concurrently.
    """

    def emit(self, event: Event, blobs: Mapping[str, bytes]) -> None: ...


class SinkBusyError(GridwatchError):
    """The sink cannot take an event now (its queue is full): the caller keeps the event and offers it later."""
