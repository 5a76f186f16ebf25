"""Case changes reach the live stream: the case store hands every committed change to its listener (the case
bus), and each open stream sends it as an `event: case` message with the actions its own caller may take."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from api.app import create_app
from intake.bus import CaseBus
from intake.case_model import ActionRequest, Case, CaseCreate
from intake.case_store import CaseStore
from tests.api.conftest import Parts, bearer, make_auth
from tests.api.server import SseMessage, serve, sse_messages

TIMEOUT = httpx.Timeout(10.0)
REPORT = {"sender_id": "app:9", "category": "0505", "description": "<img src=x onerror=alert(1)> on the pavement"}


@pytest.fixture
def case_bus() -> Iterator[CaseBus]:
    bus = CaseBus()
    yield bus
    bus.close()


@pytest.fixture
def live_cases(tmp_path: object, case_bus: CaseBus, cases: CaseStore) -> CaseStore:
    cases.on_change = case_bus.publish
    return cases


@pytest.fixture
def base_url(parts: Parts, live_cases: CaseStore, case_bus: CaseBus) -> Iterator[str]:
    deps = dataclasses.replace(parts.deps, auth=make_auth(), cases=live_cases, case_bus=case_bus)
    with serve(create_app(deps)) as url:
        yield url
        parts.deps.bus.close()
        case_bus.close()


def next_case(messages: Iterator[SseMessage]) -> dict[str, object]:
    message = next(m for m in messages if m.event == "case")
    assert message.id is None  # the browser's Last-Event-ID stays the last event's
    assert message.data is not None
    view: dict[str, object] = json.loads(message.data)
    return view


def test_the_store_announces_each_committed_change_once(cases: CaseStore) -> None:
    seen: list[Case] = []
    cases.on_change = seen.append
    at = datetime.now(UTC)
    # when: a report, an action, and a refused action
    case, _ = cases.create(CaseCreate.model_validate(REPORT), actor="a", role="operator", at=at)
    cases.transition(case.id, "accept", ActionRequest(note="ok"), actor="王值班", role="operator", at=at)
    with pytest.raises(Exception, match="not allowed"):
        cases.transition(case.id, "close", ActionRequest(), actor="王值班", role="operator", at=at)
    # then: two announcements, each the case as committed, with its audit
    assert [(c.id, c.state.value, len(c.audit)) for c in seen] == [(case.id, "reported", 1), (case.id, "accepted", 2)]


def test_a_failing_listener_does_not_undo_the_change(cases: CaseStore) -> None:
    def broken(case: Case) -> None:
        raise RuntimeError("listener down")

    cases.on_change = broken
    case, created = cases.create(CaseCreate.model_validate(REPORT), actor="a", role="operator", at=datetime.now(UTC))
    assert created and cases.get(case.id) is not None


def test_a_reported_and_an_accepted_case_reach_open_streams_with_each_callers_actions(base_url: str) -> None:
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        client.stream("GET", f"{base_url}/api/v1/stream", headers=bearer("viewer")) as viewer_stream,
        client.stream("GET", f"{base_url}/api/v1/stream", headers=bearer("operator")) as operator_stream,
    ):
        viewer, operator = sse_messages(viewer_stream), sse_messages(operator_stream)
        assert next(viewer).comments == ["connected"] and next(operator).comments == ["connected"]
        # when: a case is reported, then accepted, through the API
        posted = client.post(f"{base_url}/api/v1/cases", json=REPORT, headers=bearer("operator")).json()["case"]
        # then: both streams get it, each with what its caller may do
        seen_by_viewer, seen_by_operator = next_case(viewer), next_case(operator)
        for view in (seen_by_viewer, seen_by_operator):
            case = view["case"]
            assert isinstance(case, dict) and case["id"] == posted["id"] and case["state"] == "reported"
            assert case["description"] == REPORT["description"]
        assert seen_by_viewer["allowed"] == []
        assert seen_by_operator["allowed"] == ["accept", "reject", "false_alarm", "duplicate", "note"]
        url = f"{base_url}/api/v1/cases/{posted['id']}/actions/accept"
        assert client.post(url, headers=bearer("operator")).status_code == 200
        accepted = next_case(operator)["case"]
        assert isinstance(accepted, dict) and accepted["state"] == "accepted"
        assert accepted["audit"][-1]["actor"] == "operator-1"
