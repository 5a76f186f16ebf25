"""From verdicts to incidents: N-of-M confirmation, open / update / close, cooldown between updates.

An incident is one problem at one camera, keyed by (rule, camera, zone, object key): a fence with people in it,
one parked car, one covered lens. It opens once its rule fired on `confirm_hits` of its last `confirm_of`
visits; while it is seen, an update (with fresh evidence) is emitted at most once per `cooldown_s`; it closes
when nothing was seen for `close_after_s` seconds or `close_after_visits` visits in a row. All its events share
one incident id. Time is the capture time of the visits, so a simulated patrol behaves like a live one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from ulid import ULID

from core.events import EventState
from core.types import Verdict
from rules.schema import BaseRule, RuleCore

logger = logging.getLogger(__name__)

Slot = tuple[str, str]  # zone ("" for none), object key within the rule and camera
# an open or close's part in a re-check before filing: "" none; "held" confirmed, waiting for the re-check visit
# (not an event: its snapshot is kept for the open); "confirmed" the open the re-check visit allowed; "dropped"
# the re-check visit did not see it (not an event: nothing was ever announced)
RecheckStep = Literal["", "held", "confirmed", "dropped"]
GONE_AT_RECHECK = "gone at re-check"


@dataclass(frozen=True, slots=True)
class IncidentPolicy:
    """When an incident opens, how often it updates and when it closes."""

    confirm_hits: int = 1
    confirm_of: int = 1
    cooldown_s: float = 60.0
    close_after_s: float = 180.0
    close_after_visits: int | None = None
    recheck_s: float | None = None  # a confirmed incident opens only if a visit this much later still sees it

    @classmethod
    def of(cls, rule: RuleCore) -> IncidentPolicy:
        recheck = rule.recheck.after_s if isinstance(rule, BaseRule) and rule.recheck is not None else None
        confirm = rule.confirm
        return cls(confirm.hits, confirm.of, rule.cooldown_s, rule.close_after_s, rule.close_after_visits, recheck)


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """One emitted step of an incident. `verdict` is the firing verdict of this visit (open and update); a close
    has none. `sightings`: visits that saw it."""

    incident_id: str
    state: EventState
    rule_id: str
    camera_id: str
    zone: str | None
    key: str
    first_seen: datetime
    last_seen: datetime
    sightings: int
    verdict: Verdict | None
    reason: str
    recheck: RecheckStep = ""


@dataclass(slots=True)
class _Incident:
    fingerprint: str
    first_seen: datetime
    last_seen: datetime
    history: int = 0  # one bit per visit, newest lowest, while not yet confirmed
    incident_id: str = ""  # "" while not confirmed
    announced: bool = False
    last_update: float = 0.0  # capture time (epoch seconds) of the last emitted open or update
    misses: int = 0
    sightings: int = 0
    verdict: Verdict | None = field(default=None, repr=False)
    recheck_at: float | None = None  # capture time (epoch seconds) from which a visit re-checks it; None: no re-check


class SharedIncidents(Protocol):
    """Where the incidents of one rule at one camera live between visits when several workers patrol (Redis):
    the next visit, by whichever worker, continues the same incidents. States are opaque to the store."""

    def load(self, rule_id: str, camera_id: str) -> object | None: ...

    def save(self, rule_id: str, camera_id: str, state: object | None) -> None:
        """`None`: nothing open or pending any more."""
        ...

    def take(self, rule_id: str, camera_id: str) -> object | None:
        """Remove and return the state, atomically: of several workers taking it, one gets it."""
        ...


class IncidentTracker:
    """Incidents of every rule and camera of one patrol. Thread-safe; one camera is observed by one worker at a
    time, several cameras at once.

    With `shared`, the incidents of each (rule, camera) are loaded from it before a visit is folded in and saved
    after, so two workers visiting one camera at different times continue the same incident; this tracker then
    keeps only its own last view of them (for reloads and reports), and `close_all` leaves them open for the
    other workers.
    """

    def __init__(self, shared: SharedIncidents | None = None) -> None:
        self._shared = shared
        self._lock = threading.Lock()
        self._by_rule_camera: dict[tuple[str, str], dict[Slot, _Incident]] = {}
        # closes the sink could not take, by (rule, camera): emitted again at its next visit or reload
        self._retry: dict[tuple[str, str], list[IncidentChange]] = {}
        self._current: dict[str, str] = {}  # rule id -> the fingerprint now running (after a reload)
        self.dropped_at_recheck = 0  # confirmed incidents the re-check visit no longer saw

    def observe(
        self,
        rule_id: str,
        fingerprint: str,
        camera_id: str,
        policy: IncidentPolicy,
        verdicts: Sequence[Verdict],
        at: datetime,
    ) -> list[IncidentChange]:
        """Fold one visit's verdicts of one rule at one camera into its incidents; `verdicts` empty: nothing was
        seen (or the rule was not armed)."""
        fired = {(v.zone or "", v.key): v for v in verdicts if v.fired}
        changes: list[IncidentChange] = []
        loaded = self._shared.load(rule_id, camera_id) if self._shared is not None else None
        with self._lock:
            if self._current.setdefault(rule_id, fingerprint) != fingerprint:
                return []  # a visit that began before a reload, on the rules that were replaced: too late to count
            if self._shared is not None:
                slots = self._by_rule_camera[(rule_id, camera_id)] = _slots(loaded)
                for slot, old in list(slots.items()):  # left by a worker on the rules that were replaced
                    if old.fingerprint != fingerprint:
                        del slots[slot]
                        if old.announced:
                            changes.append(
                                _change(old, EventState.close, (rule_id, camera_id, slot), None, "rule changed", at)
                            )
            else:
                slots = self._by_rule_camera.setdefault((rule_id, camera_id), {})
            for slot, verdict in fired.items():
                inc = slots.get(slot)
                if inc is None and not verdict.fresh:
                    continue  # a repeated judgement never starts an incident
                if inc is None:
                    inc = slots[slot] = _Incident(fingerprint, at, at)
                self._seen(inc, policy, verdict, at, changes, (rule_id, camera_id, slot))
            for slot, inc in list(slots.items()):
                if slot not in fired and self._missed(inc, policy, at, changes, (rule_id, camera_id, slot)):
                    del slots[slot]
            if not slots:
                del self._by_rule_camera[(rule_id, camera_id)]
            changes.extend(self._take_retries(rule_id, camera_id))
            keep = dict(slots) if slots else None
        if self._shared is not None:
            self._shared.save(rule_id, camera_id, keep)
        return changes

    def _seen(
        self,
        inc: _Incident,
        policy: IncidentPolicy,
        verdict: Verdict,
        at: datetime,
        out: list[IncidentChange],
        where: tuple[str, str, Slot],
    ) -> None:
        if not verdict.fresh:  # still there, by a judgement made earlier: no confirmation, no new evidence
            if inc.incident_id:
                inc.last_seen, inc.misses = at, 0
            return
        inc.last_seen, inc.misses, inc.verdict = at, 0, verdict
        inc.sightings += 1
        if not inc.incident_id:
            inc.history = ((inc.history << 1) | 1) & ((1 << policy.confirm_of) - 1)
            if inc.history.bit_count() < policy.confirm_hits:
                return
            inc.incident_id = str(ULID())
        now = at.timestamp()
        step: RecheckStep = ""
        if not inc.announced and policy.recheck_s is not None:
            if inc.recheck_at is None:
                inc.recheck_at = now + policy.recheck_s
                out.append(_change(inc, EventState.open, where, verdict, verdict.reason, recheck="held"))
                return
            if now < inc.recheck_at:
                return  # seen again before the re-check: it waits for the re-check visit
            step = "confirmed"
        if not inc.announced:
            inc.announced, inc.last_update = True, now
            out.append(_change(inc, EventState.open, where, verdict, verdict.reason, recheck=step))
        elif now - inc.last_update >= policy.cooldown_s:
            inc.last_update = now
            out.append(_change(inc, EventState.update, where, verdict, verdict.reason))

    def _missed(
        self,
        inc: _Incident,
        policy: IncidentPolicy,
        at: datetime,
        out: list[IncidentChange],
        where: tuple[str, str, Slot],
    ) -> bool:
        """Count a visit that did not see the incident; True when it is gone (closed, or a candidate that faded)."""
        inc.misses += 1
        if not inc.incident_id:
            inc.history = (inc.history << 1) & ((1 << policy.confirm_of) - 1)
            return inc.history == 0
        if not inc.announced and inc.recheck_at is not None:  # held for its re-check: only that visit decides
            if at.timestamp() < inc.recheck_at:
                return False
            self.dropped_at_recheck += 1
            out.append(_change(inc, EventState.close, where, None, GONE_AT_RECHECK, closed_at=at, recheck="dropped"))
            return True
        quiet_s = (at - inc.last_seen).total_seconds()
        by_visits = policy.close_after_visits is not None and inc.misses >= policy.close_after_visits
        if quiet_s < policy.close_after_s and not by_visits:
            return False
        if inc.announced:
            reason = f"not seen for {quiet_s:.0f} s ({inc.misses} visits)"
            out.append(_change(inc, EventState.close, where, None, reason, closed_at=at))
        return True

    def _take_retries(self, rule_id: str, camera_id: str) -> list[IncidentChange]:
        return self._retry.pop((rule_id, camera_id), []) if self._retry else []

    def undeliver(self, change: IncidentChange) -> None:
        """The sink could not take `change`: an open is announced again (as an open) at the next sighting, an
        update's cooldown is lifted, a close is emitted again at the next visit of its rule and camera."""
        if change.state != EventState.close and self._shared is not None:
            slots = _slots(self._shared.load(change.rule_id, change.camera_id))
            if self._lift(slots, change):
                self._shared.save(change.rule_id, change.camera_id, slots)
        with self._lock:
            if change.state == EventState.close:
                self._retry.setdefault((change.rule_id, change.camera_id), []).append(change)
                return
            self._lift(self._by_rule_camera.get((change.rule_id, change.camera_id), {}), change)

    @staticmethod
    def _lift(slots: dict[Slot, _Incident], change: IncidentChange) -> bool:
        inc = slots.get((change.zone or "", change.key))
        if inc is None or inc.incident_id != change.incident_id:
            return False
        if change.state == EventState.open:
            inc.announced = False
        inc.last_update = 0.0
        return True

    def retain(self, fingerprints: Mapping[str, str], at: datetime) -> list[IncidentChange]:
        """After a reload (`rule id -> fingerprint` of the rules now running): incidents of rules that changed or
        are gone close now, with that reason; those of unchanged rules carry on."""
        closes: list[IncidentChange] = []
        with self._lock:
            self._current = dict(fingerprints)
            for key in [k for k in self._retry if fingerprints.get(k[0]) is None]:
                closes.extend(self._retry.pop(key))  # undelivered closes of removed rules: sent with these
            for (rule_id, camera_id), slots in list(self._by_rule_camera.items()):
                if self._shared is not None:
                    if all(i.fingerprint == fingerprints.get(rule_id) for i in slots.values()):
                        continue
                    # of the workers that saw them, one takes them (and closes them); the others' views were stale
                    slots = self._by_rule_camera[(rule_id, camera_id)] = _slots(self._shared.take(rule_id, camera_id))
                for slot, inc in list(slots.items()):
                    if fingerprints.get(rule_id) == inc.fingerprint:
                        continue
                    del slots[slot]
                    if inc.announced:
                        why = "rule changed" if rule_id in fingerprints else "rule removed"
                        closes.append(_change(inc, EventState.close, (rule_id, camera_id, slot), None, why, at))
                if self._shared is not None and slots:
                    self._shared.save(rule_id, camera_id, dict(slots))  # those of the unchanged rules: back
                if not slots:
                    del self._by_rule_camera[(rule_id, camera_id)]
        return closes

    def close_all(self, reason: str, at: datetime) -> list[IncidentChange]:
        """Close every announced incident (the patrol stops: nobody will see whether they go on), with the closes
        still waiting to be delivered; the tracker is empty afterwards."""
        with self._lock:
            closes = [c for waiting in self._retry.values() for c in waiting]
            shared = self._shared is not None  # the other workers carry them on: not closed, only forgotten here
            for (rule_id, camera_id), slots in ({} if shared else self._by_rule_camera).items():
                closes.extend(
                    _change(inc, EventState.close, (rule_id, camera_id, slot), None, reason, at)
                    for slot, inc in slots.items()
                    if inc.announced
                )
            self._by_rule_camera.clear()
            self._retry.clear()
        return closes

    def open_incidents(self) -> list[IncidentChange]:
        """Every announced incident, as its latest state (for health pages and tests)."""
        with self._lock:
            return [
                _change(inc, EventState.update, (rule_id, camera_id, slot), inc.verdict, "open")
                for (rule_id, camera_id), slots in self._by_rule_camera.items()
                for slot, inc in slots.items()
                if inc.announced
            ]

    def __len__(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._by_rule_camera.values())


def _slots(loaded: object | None) -> dict[Slot, _Incident]:
    """A shared store's state as the tracker's slots (anything else: none)."""
    if not isinstance(loaded, dict):
        return {}
    return {k: v for k, v in loaded.items() if isinstance(k, tuple) and isinstance(v, _Incident)}


def _change(
    inc: _Incident,
    state: EventState,
    where: tuple[str, str, Slot],
    verdict: Verdict | None,
    reason: str,
    closed_at: datetime | None = None,
    recheck: RecheckStep = "",
) -> IncidentChange:
    rule_id, camera_id, (zone, key) = where
    return IncidentChange(
        incident_id=inc.incident_id,
        state=state,
        rule_id=rule_id,
        camera_id=camera_id,
        zone=zone or None,
        key=key,
        first_seen=inc.first_seen,
        last_seen=closed_at or inc.last_seen,
        sightings=inc.sightings,
        verdict=verdict,
        reason=reason,
        recheck=recheck,
    )
