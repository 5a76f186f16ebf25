"""Public response models. Events go out in their own versioned schema, `core.events.Event`; incidents as the
intake's `IncidentSummary`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from api.auth import Via
from core.events import Event
from core.settings import ApiRole
from intake.store import IncidentSummary


class EventPage(BaseModel):
    """One page of events, newest first; pass `next` as `before` to get the following page."""

    model_config = ConfigDict(frozen=True)

    items: list[Event]
    next: str | None = Field(description="cursor for the next (older) page; null on the last page")


class IncidentPage(BaseModel):
    """One page of incidents, the one with the newest latest event first; pass `next` as `before` to get the
    following page."""

    model_config = ConfigDict(frozen=True)

    items: list[IncidentSummary]
    next: str | None = Field(description="cursor (the last item's latest event id); null on the last page")


class Problem(BaseModel):
    """An error answer."""

    detail: str


class FieldError(BaseModel):
    """One field that failed validation, as FastAPI reports it."""

    loc: list[str | int]
    msg: str
    type: str


class Unprocessable(BaseModel):
    """A 422: the fields that failed validation (a list, as FastAPI reports them), or why the request cannot be
    done (a sentence)."""

    detail: str | list[FieldError]


AUTH_ERRORS: dict[int | str, dict[str, object]] = {401: {"model": Problem}, 403: {"model": Problem}}
"""The `responses` of a route that needs a role: 401 without good credentials, 403 for a role too low."""


class HealthBrief(BaseModel):
    """What `/healthz` tells a caller that is not signed in."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ok"] = "ok"
    version: str


class HealthPublic(HealthBrief):
    """What `/healthz` tells a signed-in caller (any role), or anyone when authentication is off."""

    schema_version: int
    stream_subscribers: int
    stream_dropped: int
    details: dict[str, JsonValue] = Field(default_factory=dict)


class SessionPublic(BaseModel):
    """Who the caller is. `via`: `token` (bearer header), `session` (cookie) or `anonymous` (authentication off)."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: ApiRole
    via: Via
    expires_at: datetime | None = Field(default=None, description="end of the session; null for tokens")
    csrf: str | None = Field(
        default=None, description="sessions: send it as `X-CSRF-Token` with changes made with the cookie"
    )
