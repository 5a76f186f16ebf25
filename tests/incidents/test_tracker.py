"""The incident lifecycle: confirmation, open / update / close, cooldown, quiet period, reloads, delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.events import EventState
from core.types import Verdict
from incidents.tracker import IncidentChange, IncidentPolicy, IncidentTracker

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
OPEN, UPDATE, CLOSE = EventState.open, EventState.update, EventState.close


def hit(key: str = "", zone: str | None = "walkway", fired: bool = True) -> Verdict:
    return Verdict("r1", "cam-1", fired, zone=zone, key=key, reason=f"seen {key}")


def run(
    policy: IncidentPolicy, visits: list[list[Verdict]], step_s: float = 60.0, tracker: IncidentTracker | None = None
) -> list[tuple[int, EventState, str]]:
    """(visit number, state, incident id) of every change over visits `step_s` apart."""
    tracker = tracker or IncidentTracker()
    out = []
    for i, verdicts in enumerate(visits):
        for change in tracker.observe("r1", "fp1", "cam-1", policy, verdicts, T0 + timedelta(seconds=i * step_s)):
            out.append((i, change.state, change.incident_id))
    return out


@pytest.mark.parametrize(
    ("policy", "pattern", "expected"),
    [
        # seen at every visit: open once, an update per cooldown, never a second incident
        (IncidentPolicy(cooldown_s=120), "xxxxxx", [(0, OPEN), (2, UPDATE), (4, UPDATE)]),
        # a passer-by on one visit only never opens with 2 of 3
        (IncidentPolicy(confirm_hits=2, confirm_of=3), "x..x..x", []),
        # 2 of 3 opens at the second sighting within three visits
        (IncidentPolicy(confirm_hits=2, confirm_of=3), "x.x", [(2, OPEN)]),
        # quiet for close_after_s (180 s = 3 visits) closes
        (IncidentPolicy(cooldown_s=600), "xx...", [(0, OPEN), (4, CLOSE)]),
        # a gap shorter than the quiet period keeps the incident
        (IncidentPolicy(cooldown_s=600), "xx..xx", [(0, OPEN)]),
        # close by visits: two empty visits in a row
        (IncidentPolicy(cooldown_s=600, close_after_visits=2), "x..", [(0, OPEN), (2, CLOSE)]),
        # after a close, the problem coming back is a new incident
        (IncidentPolicy(cooldown_s=600, close_after_visits=1), "x.x", [(0, OPEN), (1, CLOSE), (2, OPEN)]),
    ],
)
def test_lifecycle(policy: IncidentPolicy, pattern: str, expected: list[tuple[int, EventState]]) -> None:
    changes = run(policy, [[hit()] if c == "x" else [hit(fired=False)] for c in pattern])
    assert [(i, s) for i, s, _ in changes] == expected
    opens = [i for i, s, _ in changes if s == OPEN]
    # every change between two opens shares the incident id of the open before it
    for i, state, ident in changes:
        owner = next(j for j, s, x in reversed(changes) if s == OPEN and j <= i)
        assert ident == next(x for j, s, x in changes if j == owner and s == OPEN), (i, state)
    assert len({x for _, _, x in changes}) == len(opens)


def test_objects_are_incidents_of_their_own() -> None:
    policy = IncidentPolicy(cooldown_s=600, close_after_visits=1)
    changes = run(policy, [[hit("o1")], [hit("o1"), hit("o2")], [hit("o2")]])
    assert [(i, s) for i, s, _ in changes] == [(0, OPEN), (1, OPEN), (2, CLOSE)]
    assert changes[0][2] == changes[2][2] != changes[1][2]  # o1 opened and closed; o2 still open


def test_an_undelivered_open_is_announced_at_the_next_sighting() -> None:
    tracker = IncidentTracker()
    policy = IncidentPolicy(cooldown_s=600)
    [first] = tracker.observe("r1", "fp1", "cam-1", policy, [hit()], T0)
    tracker.undeliver(first)
    [again] = tracker.observe("r1", "fp1", "cam-1", policy, [hit()], T0 + timedelta(seconds=60))
    assert (again.state, again.incident_id, again.first_seen) == (OPEN, first.incident_id, T0)


def test_an_undelivered_close_is_emitted_again() -> None:
    tracker = IncidentTracker()
    policy = IncidentPolicy(cooldown_s=600, close_after_visits=1)
    tracker.observe("r1", "fp1", "cam-1", policy, [hit()], T0)
    [close] = tracker.observe("r1", "fp1", "cam-1", policy, [], T0 + timedelta(seconds=60))
    tracker.undeliver(close)
    assert tracker.observe("r1", "fp1", "cam-1", policy, [], T0 + timedelta(seconds=120)) == [close]


def test_a_reload_keeps_unchanged_rules_and_closes_changed_ones() -> None:
    # given: incidents of two rules at one camera
    tracker = IncidentTracker()
    policy = IncidentPolicy(cooldown_s=600)
    kept: list[IncidentChange] = tracker.observe("r1", "fp1", "cam-1", policy, [hit()], T0)
    tracker.observe("r2", "fp2", "cam-1", policy, [Verdict("r2", "cam-1", True)], T0)
    # when: r2's definition changed, r1 did not, r3 is gone
    closed = tracker.retain({"r1": "fp1", "r2": "fp2-new"}, T0 + timedelta(seconds=10))
    # then
    assert [(c.rule_id, c.state, c.reason) for c in closed] == [("r2", CLOSE, "rule changed")]
    later = tracker.observe("r1", "fp1", "cam-1", policy, [hit()], T0 + timedelta(seconds=700))
    assert [(c.state, c.incident_id) for c in later] == [(UPDATE, kept[0].incident_id)]
    assert [c.rule_id for c in tracker.open_incidents()] == ["r1"]


def test_repeated_judgements_keep_an_incident_open_but_never_confirm_or_update_one() -> None:
    tracker = IncidentTracker()
    policy = IncidentPolicy(confirm_hits=2, confirm_of=3, cooldown_s=0, close_after_s=120)
    repeated = Verdict("r1", "cam-1", True, key="black", fresh=False)
    judged = Verdict("r1", "cam-1", True, key="black")
    steps = []
    # one judged black picture, then its judgement repeated: no incident (only 1 of the last 3 judgements)
    for i, v in enumerate([judged, repeated, repeated, repeated]):
        steps += [c.state for c in tracker.observe("r1", "fp1", "cam-1", policy, [v], T0 + timedelta(minutes=i))]
    assert steps == []
    # the next judgement is the second of the last three: it opens; the one after updates (fresh evidence);
    # repeats keep it open past its 120 s quiet period, without updates
    for i, v in enumerate([judged, judged, repeated, repeated, repeated, repeated], start=10):
        steps += [c.state for c in tracker.observe("r1", "fp1", "cam-1", policy, [v], T0 + timedelta(minutes=i))]
    assert steps == [OPEN, UPDATE]


def test_a_visit_on_the_rules_before_a_reload_is_ignored() -> None:
    tracker = IncidentTracker()
    policy = IncidentPolicy(cooldown_s=600)
    tracker.observe("r1", "old", "cam-1", policy, [hit()], T0)
    [closed] = tracker.retain({"r1": "new"}, T0)
    # a visit that started before the reload finishes on the old rules: it neither reopens nor strands an incident
    assert tracker.observe("r1", "old", "cam-1", policy, [hit()], T0 + timedelta(seconds=1)) == []
    [opened] = tracker.observe("r1", "new", "cam-1", policy, [hit()], T0 + timedelta(seconds=2))
    assert (closed.state, opened.state) == (CLOSE, OPEN) and closed.incident_id != opened.incident_id
    assert len(tracker) == 1


def test_undelivered_closes_of_a_removed_rule_go_with_the_reload_and_close_all_empties_the_tracker() -> None:
    tracker = IncidentTracker()
    policy = IncidentPolicy(cooldown_s=600, close_after_visits=1)
    tracker.observe("r1", "fp1", "cam-1", policy, [hit()], T0)
    [close] = tracker.observe("r1", "fp1", "cam-1", policy, [], T0 + timedelta(seconds=60))
    tracker.undeliver(close)
    assert tracker.retain({}, T0 + timedelta(seconds=61)) == [close]
    tracker.observe("r2", "fp2", "cam-2", policy, [Verdict("r2", "cam-2", True)], T0)
    [stopped] = tracker.close_all("patrol stopped", T0 + timedelta(seconds=90))
    assert (stopped.rule_id, stopped.state, stopped.reason) == ("r2", CLOSE, "patrol stopped")
    assert len(tracker) == 0 and tracker.close_all("again", T0) == []
