"""Reports from other systems: `POST /api/v1/intake/webhook`, signed per Standard Webhooks with real signatures
from the `standardwebhooks` package. A good one makes a case; a redelivery makes none; a tampered body, a wrong
secret or a stale timestamp are refused, and the secret never reaches the log."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from api.app import create_app
from intake.case_store import CaseStore
from tests.api.conftest import Parts, bearer, make_auth

SECRET = "whsec_" + base64.b64encode(b"inbound-secret-of-32-bytes-long!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-of-32-bytes-long!").decode()
URL = "/api/v1/intake/webhook"

DATA = {
    "category": "0101",
    "description": "12345 热线: 小区门口垃圾堆积 rubbish piled at the gate",
    "address": "南京东路 300 号",
    "lon": 121.4737,
    "lat": 31.2304,
    "reporter": {"name": "12345 hotline", "id": "HL-2026-0042"},
}


def envelope(data: dict[str, Any] | None = None, **fields: Any) -> str:
    body = {"type": "case.report", "timestamp": "2026-05-06T08:00:00Z", "data": DATA if data is None else data}
    return json.dumps({**body, **fields}, ensure_ascii=False)


def signed(
    body: str, webhook_id: str = "msg_2Lk7q9Xw", *, secret: str = SECRET, at: datetime | None = None
) -> dict[str, str]:
    moment = at or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, moment, body),
    }


@pytest.fixture
def cases(tmp_path: Path) -> Iterator[CaseStore]:
    store = CaseStore(tmp_path / "cases.sqlite3")
    yield store
    store.close()


@pytest.fixture
def api(parts: Parts, cases: CaseStore) -> Iterator[TestClient]:
    deps = dataclasses.replace(parts.deps, auth=make_auth(), cases=cases, inbound_secret=SECRET)
    with TestClient(create_app(deps)) as client:
        yield client


def test_a_signed_report_makes_a_case_once_per_webhook_id(api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = envelope()
    # when: a signed report arrives (no bearer token: the signature is the credential)
    first = api.post(URL, content=body.encode(), headers=signed(body))
    assert first.status_code == 202, first.text
    made = first.json()
    assert made["created"] is True and made["state"] == "reported" and made["number"].endswith("-000001")
    # then: the case is there, from an external system, its sender id the webhook id, done by `webhook`
    case = api.get(f"/api/v1/cases/{made['id']}", headers=bearer("viewer")).json()["case"]
    assert (case["source"], case["sender_id"], case["category"]) == ("external", "webhook:msg_2Lk7q9Xw", "0101")
    assert case["reporter"] == {**DATA["reporter"], "camera_id": "", "rule_id": "", "model": ""}
    assert [(a["actor"], a["role"], a["action"]) for a in case["audit"]] == [("webhook", "operator", "report")]
    # when: the producer redelivers the same message (a new attempt: a new timestamp and signature)
    again = api.post(URL, content=body.encode(), headers=signed(body, at=datetime.now(UTC) + timedelta(seconds=30)))
    # then: the same case, 200, and still one case
    assert again.status_code == 200, again.text
    assert again.json() == {**made, "created": False}
    assert len(api.get("/api/v1/cases", headers=bearer("viewer")).json()["items"]) == 1
    # and: another message id is another case
    other = api.post(URL, content=body.encode(), headers=signed(body, "msg_other"))
    assert other.status_code == 202 and other.json()["id"] != made["id"]
    assert SECRET not in caplog.text and SECRET.removeprefix("whsec_") not in caplog.text


def test_the_source_is_external_unless_it_is_a_person(api: TestClient) -> None:
    for n, (given, kept) in enumerate(
        [("hotline", "hotline"), ("citizen", "citizen"), ("grid_worker", "grid_worker"), ("camera", "external")]
    ):
        body = envelope({**DATA, "source": given})
        answer = api.post(URL, content=body.encode(), headers=signed(body, f"msg_{n}"))
        assert answer.status_code == 202, answer.text
        case = api.get(f"/api/v1/cases/{answer.json()['id']}", headers=bearer("viewer")).json()["case"]
        assert case["source"] == kept, given
    # a sender id in the data wins over the webhook id: two messages of one report make one case
    body = envelope({**DATA, "sender_id": "district-7:A-17"})
    ids = {api.post(URL, content=body.encode(), headers=signed(body, f"msg_s{n}")).json()["id"] for n in range(2)}
    assert len(ids) == 1


@pytest.mark.parametrize("case", ["tampered", "wrong secret", "stale", "future", "no signature"])
def test_bad_signatures_and_stale_timestamps_are_refused(
    api: TestClient, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.DEBUG)
    body = envelope()
    headers = signed(body)
    sent = body
    if case == "tampered":
        sent = body.replace('"0101"', '"0102"')
    elif case == "wrong secret":
        headers = signed(body, secret=OTHER_SECRET)
    elif case == "stale":
        headers = signed(body, at=datetime.now(UTC) - timedelta(minutes=6))
    elif case == "future":
        headers = signed(body, at=datetime.now(UTC) + timedelta(minutes=6))
    else:
        del headers["webhook-signature"]
    answer = api.post(URL, content=sent.encode(), headers=headers)
    assert answer.status_code == 401, answer.text
    expected = {
        "tampered": "no matching v1 signature",
        "wrong secret": "no matching v1 signature",
        "stale": "s old; tolerance 300 s",
        "future": "s in the future; tolerance 300 s",
        "no signature": "missing header(s): webhook-signature",
    }[case]
    assert expected in answer.json()["detail"]
    assert api.get("/api/v1/cases", headers=bearer("viewer")).json()["items"] == []
    assert "refused (401)" in caplog.text and SECRET not in caplog.text


def test_without_a_secret_the_route_is_closed(parts: Parts, cases: CaseStore) -> None:
    deps = dataclasses.replace(parts.deps, auth=make_auth(), cases=cases)
    with TestClient(create_app(deps)) as client:
        body = envelope()
        answer = client.post(URL, content=body.encode(), headers=signed(body))
    assert answer.status_code == 503
    assert answer.json() == {"detail": "no inbound webhook secret configured"}


def test_an_oversize_body_is_refused_before_it_is_checked(api: TestClient) -> None:
    body = envelope({**DATA, "description": "x" * (1024 * 1024)})
    answer = api.post(URL, content=body.encode(), headers=signed(body))
    assert answer.status_code == 413
    assert answer.json()["detail"] == "body over 1048576 bytes"

    def chunks() -> Iterator[bytes]:  # no content-length: counted as it arrives
        data = body.encode()
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    streamed = api.post(URL, content=chunks(), headers=signed(body))
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (envelope({**DATA, "category": "01a1"}), ["body", "data", "category"]),
        (envelope({**DATA, "lat": "31.2"}), ["body", "data", "lat"]),  # strict: a string is not a number
        (envelope({**DATA, "colour": "red"}), ["body", "data", "colour"]),
        (envelope({**DATA, "source": "satellite"}), ["body", "data", "source"]),
        (envelope(type="case.deleted"), ["body", "type"]),
        (envelope(extra=1), ["body", "extra"]),
        (json.dumps({"type": "case.report", "data": DATA}), ["body", "timestamp"]),
    ],
)
def test_bad_data_is_refused_naming_the_field(api: TestClient, body: str, field: list[str]) -> None:
    answer = api.post(URL, content=body.encode(), headers=signed(body))
    assert answer.status_code == 422, answer.text
    assert [e["loc"] for e in answer.json()["detail"]] == [field]
    assert api.get("/api/v1/cases", headers=bearer("viewer")).json()["items"] == []


def test_a_signed_body_that_is_not_a_json_object_is_unprocessable(api: TestClient) -> None:
    for body in ("[1, 2]", "not json"):
        answer = api.post(URL, content=body.encode(), headers=signed(body))
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"].startswith("signed body is")


def test_the_route_is_in_the_openapi_schema_with_its_body_and_headers(api: TestClient) -> None:
    operation = api.get("/api/v1/openapi.json").json()["paths"][URL]["post"]
    assert {p["name"] for p in operation["parameters"]} == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["type", "timestamp", "data"]
    assert {"202", "200", "401", "413", "422", "503"} <= set(operation["responses"])
