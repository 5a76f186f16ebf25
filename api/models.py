"""Public response models. Events go out in their own versioned schema, `core.events.Event`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from core.events import Event


class EventPage(BaseModel):
    """One page of events, newest first; pass `next` as `before` to get the following page."""

    model_config = ConfigDict(frozen=True)

    items: list[Event]
    next: str | None = Field(description="cursor for the next (older) page; null on the last page")


class Problem(BaseModel):
    """An error answer."""

    detail: str


class HealthPublic(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Literal["ok"] = "ok"
    version: str
    schema_version: int
    stream_subscribers: int
    stream_dropped: int
    details: dict[str, JsonValue] = Field(default_factory=dict)
