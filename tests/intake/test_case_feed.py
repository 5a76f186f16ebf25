"""Camera incidents into cases through the feed: one case per incident, evidence attached, repeats merged,
human reports linked, nothing lost or doubled when events are replayed or stored out of order; cards once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ulid import ULID

from core.events import EventState
from intake.calendar import WorkCalendar
from intake.case_deadlines import CalendarDeadlines
from intake.case_feed import CaseFeed
from intake.case_model import ActionRequest, CaseCreate
from intake.case_store import CaseStore, sweep_cards
from intake.deadlines import DeadlinePolicy
from intake.incident_cases import IncidentCases
from intake.store import EventStore
from intake.workflow import TransitionRefusedError
from tests.intake.builders import BASE_TIME, make_event, make_evidence, make_image_bytes
from tests.support.postgres import StoreTargets

NOW = BASE_TIME + timedelta(minutes=10)


@pytest.fixture
def events(store_targets: StoreTargets) -> Iterator[EventStore]:
    with EventStore(store_targets.events) as store:
        yield store


@pytest.fixture
def cases(store_targets: StoreTargets) -> Iterator[CaseStore]:
    """A case store on each backend, SQLite and PostgreSQL (with the event store beside it)."""
    store = CaseStore(store_targets.cases)
    yield store
    store.close()


def feed_of(events: EventStore, cases: CaseStore, **kw: float) -> CaseFeed:
    return CaseFeed(events, IncidentCases(cases, **kw), lambda: NOW)


def incident(n: int, *states: EventState, start_s: float = 0.0, camera: str = "cam-1") -> list[object]:
    ident = str(ULID.from_datetime(BASE_TIME + timedelta(seconds=start_s)))
    return [
        make_event(
            start_s + 60 * i,
            state=s,
            incident_id=ident,
            camera_id=camera,
            evidence=[] if s == EventState.close else [make_evidence(make_image_bytes(n * 100 + i))],
        )
        for i, s in enumerate(states)
    ]


def test_an_incident_becomes_one_case_that_collects_its_evidence(events: EventStore, cases: CaseStore) -> None:
    # given: an incident opened, updated twice and closed
    for e in incident(1, EventState.open, EventState.update, EventState.update, EventState.close):
        events.add(e)  # type: ignore[arg-type]
    feed = feed_of(events, cases)
    # when
    feed.run_once()
    # then: one camera case, all three snapshots on it, the incident's close noted but the case still open
    [case] = cases.list()
    assert (case.source.value, case.state.value, case.incident_open) == ("camera", "reported", False)
    assert len(case.evidence) == 3 and case.reporter.camera_id == "cam-1"
    assert [a.action for a in case.audit] == ["report", "incident_closed"]
    # replaying everything changes nothing
    assert feed.run_once() == 0
    assert cases.get(case.id) == case


def test_events_stored_out_of_order_within_the_overlap_are_still_applied(events: EventStore, cases: CaseStore) -> None:
    first, second = incident(1, EventState.open), incident(2, EventState.open, start_s=30, camera="cam-2")
    events.add(second[0])  # type: ignore[arg-type]
    feed = CaseFeed(events, IncidentCases(cases), lambda: BASE_TIME + timedelta(seconds=40))
    feed.run_once()
    events.add(first[0])  # type: ignore[arg-type]  # an older id, stored after the cursor moved past it
    feed.run_once()
    assert sorted(c.reporter.camera_id for c in cases.list()) == ["cam-1", "cam-2"]


def test_repeats_of_one_camera_category_and_zone_join_one_case(events: EventStore, cases: CaseStore) -> None:
    # given: an incident that closed, and a second one of the same camera, category and zone 10 minutes later
    for e in [*incident(1, EventState.open, EventState.close), *incident(2, EventState.open, start_s=600)]:
        events.add(e)  # type: ignore[arg-type]
    feed_of(events, cases).run_once()
    # then: one case, the second incident merged into it
    [case] = cases.list()
    assert [a.action for a in case.audit] == ["report", "incident_closed", "merge"]
    assert case.incident_open and len(case.evidence) == 2


def test_a_human_report_in_the_same_grid_and_category_is_linked(events: EventStore, cases: CaseStore) -> None:
    worker = CaseCreate(sender_id="app:1", category="0501", grid_code="310101001001", description="摊贩")
    human, _ = cases.create(worker, actor="gw-7", role="operator", at=BASE_TIME - timedelta(minutes=5))
    [opened] = incident(1, EventState.open)
    events.add(opened.model_copy(update={"category": "0501", "grid_code": "310101001001"}))  # type: ignore[attr-defined]
    feed_of(events, cases).run_once()
    camera = next(c for c in cases.list() if c.source.value == "camera")
    assert camera.linked == [human.id]
    assert cases.get(human.id).linked == [camera.id]  # type: ignore[union-attr]


def test_cards_are_raised_once_each_at_their_deadlines(cases: CaseStore, tmp_path: Path) -> None:
    # given: the 1-3-5 rule on the real calendar; a general case reported on Monday 2026-06-01 (Shanghai)
    store = CaseStore(tmp_path / "carded.sqlite3", deadlines=CalendarDeadlines(DeadlinePolicy(), WorkCalendar()))
    reported = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    case, _ = store.create(CaseCreate(sender_id="app:2", category="0505"), actor="gw", role="operator", at=reported)
    assert case.due_by is not None and case.red_by is not None
    # when: the sweeper looks before, after the 3-day limit (twice), and after the 5-day limit
    seen = [
        [c.kind for _, c in sweep_cards(store, at)]
        for at in (
            case.due_by - timedelta(hours=1),
            case.due_by + timedelta(minutes=1),
            case.due_by + timedelta(hours=2),
            case.red_by + timedelta(minutes=1),
        )
    ]
    # then: a yellow card once, a red card once, both audited
    assert seen == [[], ["yellow"], [], ["red"]]
    final = store.get(case.id)
    assert final is not None and final.cards == ["yellow", "red"]
    assert [a.action for a in final.audit][-2:] == ["card_yellow", "card_red"]
    store.close()


def test_a_human_report_after_a_camera_case_links_to_it(events: EventStore, cases: CaseStore) -> None:
    [opened] = incident(1, EventState.open)
    events.add(opened.model_copy(update={"category": "0501", "grid_code": "310101001001"}))  # type: ignore[attr-defined]
    feed_of(events, cases).run_once()
    [camera] = cases.list()
    worker = CaseCreate(sender_id="app:9", category="0501", grid_code="310101001001", description="流动摊贩")
    human, _ = cases.create(worker, actor="gw-7", role="operator", at=BASE_TIME + timedelta(minutes=20))
    assert human.linked == [camera.id]
    assert cases.get(camera.id).linked == [human.id]  # type: ignore[union-attr]
    # a report of another category or grid is not linked
    other = CaseCreate(sender_id="app:10", category="0505", grid_code="310101001001")
    assert cases.create(other, actor="gw-7", role="operator", at=BASE_TIME + timedelta(minutes=21))[0].linked == []


def test_one_event_that_cannot_be_made_a_case_never_holds_up_the_others(events: EventStore, cases: CaseStore) -> None:
    # given: an event whose case cannot be made (its incident id already taken by another case), then a good one
    [bad] = incident(1, EventState.open)
    [good] = incident(2, EventState.open, start_s=30, camera="cam-2")
    taken = CaseCreate(sender_id=f"incident:{bad.incident_id}", source="camera", category="05")  # type: ignore[attr-defined]
    cases.create(taken, actor="x", role="operator", at=BASE_TIME)
    events.add(bad)  # type: ignore[arg-type]
    events.add(good)  # type: ignore[arg-type]
    feed = feed_of(events, cases, merge_window_s=0)
    # when
    feed.run_once()
    # then: the bad one is passed over and counted, the good one is a case, and the next pass goes on from there
    assert feed.stats.skipped == 1
    assert sorted(c.reporter.camera_id for c in cases.list()) == ["", "cam-2"]
    assert feed.run_once() == 0


def test_an_event_without_an_incident_makes_no_case(events: EventStore, cases: CaseStore) -> None:
    events.add(make_event(0, camera_id="cam-1"))
    events.add(make_event(1, camera_id="cam-9"))
    assert feed_of(events, cases).run_once() == 0
    assert cases.list() == []


def test_an_overlong_reason_is_cut_to_the_description_limit(events: EventStore, cases: CaseStore) -> None:
    [opened] = incident(1, EventState.open)
    events.add(opened.model_copy(update={"reason": "很长 " * 3000}))  # type: ignore[attr-defined]
    feed_of(events, cases).run_once()
    [case] = cases.list()
    assert len(case.description) == 4000


def test_senders_may_not_use_the_intakes_incident_ids() -> None:
    with pytest.raises(ValueError, match="sender ids starting with 'incident:' are the intake's own"):
        CaseCreate(sender_id="incident:01K0000000000000000000000", category="05")


def test_a_suspended_case_gets_no_card_and_its_deadlines_move_on_resume(tmp_path: Path) -> None:
    store = CaseStore(tmp_path / "s.sqlite3", deadlines=CalendarDeadlines(DeadlinePolicy(), WorkCalendar()))
    reported = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    case, _ = store.create(CaseCreate(sender_id="app:3", category="0505"), actor="gw", role="operator", at=reported)
    store.transition(case.id, "accept", ActionRequest(), actor="op", role="operator", at=reported)
    store.transition(case.id, "suspend", ActionRequest(), actor="boss", role="admin", at=reported)
    assert sweep_cards(store, reported + timedelta(days=30)) == []
    resumed = store.transition(
        case.id, "resume", ActionRequest(), actor="boss", role="admin", at=reported + timedelta(days=30)
    )
    assert resumed.due_by is not None and case.due_by is not None and resumed.due_by > case.due_by
    store.close()


def test_a_duplicate_must_name_another_existing_case(cases: CaseStore) -> None:
    case, _ = cases.create(CaseCreate(sender_id="app:4", category="05"), actor="gw", role="operator", at=BASE_TIME)
    for original in (case.id, "01K0000000000000000000000X"):
        with pytest.raises(TransitionRefusedError, match="is not another case"):
            cases.transition(
                case.id, "duplicate", ActionRequest(duplicate_of=original), actor="op", role="operator", at=BASE_TIME
            )
