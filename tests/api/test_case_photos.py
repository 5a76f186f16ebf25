"""Photos on a case: `POST /api/v1/cases/{case_id}/photos` with real JPEG and PNG files. Stored as sent (the same
bytes come back from `GET /api/v1/evidence/{key}`), listed in the case's evidence with their stage, audited and
queued for delivery; anything that is not a JPEG or PNG that decodes, too large, or too many is refused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes import case_photos
from core.events import Evidence
from core.settings import ApiRole
from intake.case_store import CaseStore
from intake.photos import MAX_PHOTO_BYTES, PhotoError, inspect_photo
from intake.workflow import TransitionRefusedError
from tests.api.conftest import Parts, bearer, make_auth
from tests.support.assets import ultralytics_asset

REPORT = {
    "sender_id": "app-7f3a:0099",
    "source": "grid_worker",
    "category": "0101",
    "description": "垃圾堆积 rubbish piled up",
    "lon": 121.4737,
    "lat": 31.2304,
}


@pytest.fixture(scope="module")
def bus_jpg() -> bytes:
    return ultralytics_asset("bus.jpg").read_bytes()


@pytest.fixture(scope="module")
def png() -> bytes:
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    cv2.rectangle(image, (20, 30), (140, 100), (0, 128, 255), -1)
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


@pytest.fixture
def cases(tmp_path: Path) -> Iterator[CaseStore]:
    store = CaseStore(tmp_path / "cases.sqlite3", targets=("city",))
    yield store
    store.close()


@pytest.fixture
def api(parts: Parts, cases: CaseStore) -> Iterator[TestClient]:
    deps = dataclasses.replace(parts.deps, auth=make_auth(), cases=cases)
    with TestClient(create_app(deps)) as client:
        yield client


@pytest.fixture
def case_id(api: TestClient) -> str:
    posted = api.post("/api/v1/cases", json=REPORT, headers=bearer("operator"))
    assert posted.status_code == 201, posted.text
    return str(posted.json()["case"]["id"])


def upload(
    api: TestClient,
    case_id: str,
    files: list[tuple[str, bytes, str]],
    stage: str | None = "before",
    role: ApiRole = "operator",
) -> Any:
    data = {} if stage is None else {"stage": stage}
    parts = [("photo", (name, content, kind)) for name, content, kind in files]
    return api.post(f"/api/v1/cases/{case_id}/photos", data=data, files=parts, headers=bearer(role))


def test_photos_before_and_after_are_stored_as_sent_and_listed_with_their_stage(
    api: TestClient, cases: CaseStore, case_id: str, bus_jpg: bytes, png: bytes
) -> None:
    # when: a grid worker sends two photos before, then one after
    before = upload(api, case_id, [("bus.jpg", bus_jpg, "image/jpeg"), ("sketch.png", png, "image/png")])
    assert before.status_code == 200, before.text
    after = upload(api, case_id, [("done.png", png, "image/png")], stage="after")
    assert after.status_code == 200, after.text
    # then: the case lists them with their stage, size and hash, and its state has not changed
    case = api.get(f"/api/v1/cases/{case_id}", headers=bearer("viewer")).json()["case"]
    assert case["state"] == "reported"
    photos = [Evidence.model_validate(e) for e in case["evidence"]]
    assert [(p.kind, p.stage, p.content_type, p.width, p.height) for p in photos] == [
        ("photo", "before", "image/jpeg", 810, 1080),
        ("photo", "before", "image/png", 160, 120),
        ("photo", "after", "image/png", 160, 120),
    ]
    assert photos[0].key == hashlib.sha256(bus_jpg).hexdigest() + ".jpg"
    assert photos[0].sha256 == hashlib.sha256(bus_jpg).hexdigest()
    # and: the evidence route serves exactly the bytes that were sent (never re-encoded)
    for photo, sent in ((photos[0], bus_jpg), (photos[1], png)):
        served = api.get(f"/api/v1/evidence/{photo.key}", headers=bearer("viewer"))
        assert served.status_code == 200
        assert served.headers["content-type"] == photo.content_type and served.content == sent
    # and: each upload is audited (who, stage, count) and queued for delivery as case.photos
    audit = [(a["action"], a["actor"], a["note"], a["from_state"], a["to_state"]) for a in case["audit"]]
    assert audit[1:] == [
        ("photo", "operator-1", "2 before photos", "reported", "reported"),
        ("photo", "operator-1", "1 after photo", "reported", "reported"),
    ]
    with sqlite3.connect(cases.db_path) as conn:
        rows = conn.execute("SELECT event_type, body FROM outbox WHERE case_id = ? ORDER BY seq", (case_id,))
        deliveries = [(kind, json.loads(body)) for kind, body in rows]
    assert [kind for kind, _ in deliveries] == ["case.reported", "case.photos", "case.photos"]
    assert [e["stage"] for e in deliveries[-1][1]["data"]["evidence"]] == ["before", "before", "after"]


def test_the_same_photo_sent_twice_is_kept_once(api: TestClient, case_id: str, bus_jpg: bytes) -> None:
    for _ in range(2):
        assert upload(api, case_id, [("bus.jpg", bus_jpg, "image/jpeg")]).status_code == 200
    case = api.get(f"/api/v1/cases/{case_id}", headers=bearer("viewer")).json()["case"]
    assert len(case["evidence"]) == 1 and [a["action"] for a in case["audit"]] == ["report", "photo"]


def test_what_is_not_a_jpeg_or_png_that_decodes_is_refused(
    api: TestClient, case_id: str, bus_jpg: bytes, tmp_path: Path
) -> None:
    text = tmp_path / "photo.jpg"  # a text file renamed .jpg, sent as image/jpeg
    text.write_text("这不是照片 not a photo\n" * 50)
    refused = upload(api, case_id, [("photo.jpg", text.read_bytes(), "image/jpeg")])
    assert refused.status_code == 415, refused.text
    assert refused.json()["detail"] == "photo 1: not a JPEG or PNG image (by its first bytes)"
    # right magic bytes, then nothing that decodes
    broken = bus_jpg[:2] + b"\xff\xe0\x00\x10" + b"\x00" * 4000
    assert upload(api, case_id, [("broken.jpg", broken, "image/jpeg")]).status_code == 415
    # one bad file refuses the request: nothing is attached
    mixed = upload(api, case_id, [("bus.jpg", bus_jpg, "image/jpeg"), ("photo.jpg", text.read_bytes(), "image/jpeg")])
    assert mixed.status_code == 415 and mixed.json()["detail"].startswith("photo 2: ")
    case = api.get(f"/api/v1/cases/{case_id}", headers=bearer("viewer")).json()["case"]
    assert case["evidence"] == []


def test_too_large_and_too_many_are_refused(api: TestClient, case_id: str, bus_jpg: bytes, png: bytes) -> None:
    # a real JPEG padded past 10 MB (it still decodes: the size alone refuses it)
    big = bus_jpg + b"\x00" * (MAX_PHOTO_BYTES + 1 - len(bus_jpg))
    too_big = upload(api, case_id, [("big.jpg", big, "image/jpeg")])
    assert too_big.status_code == 413, too_big.text
    nine = upload(api, case_id, [(f"p{n}.png", png, "image/png") for n in range(9)])
    assert nine.status_code == 413 and nine.json()["detail"] == "at most 8 photos per request"
    eight = upload(api, case_id, [(f"p{n}.png", png, "image/png") for n in range(8)])
    assert eight.status_code == 200, eight.text


def test_a_small_file_that_decodes_to_too_many_pixels_is_refused_before_decoding(api: TestClient, case_id: str) -> None:
    ok, encoded = cv2.imencode(".png", np.zeros((8000, 7000), dtype=np.uint8))
    assert ok and encoded.nbytes < MAX_PHOTO_BYTES
    with pytest.raises(PhotoError, match="8000 pixels: at most 50 megapixels"):
        inspect_photo(encoded.tobytes())
    answer = upload(api, case_id, [("bomb.png", encoded.tobytes(), "image/png")])
    assert answer.status_code == 413, answer.text


def test_the_form_is_checked(api: TestClient, case_id: str, png: bytes) -> None:
    no_stage = upload(api, case_id, [("a.png", png, "image/png")], stage=None)
    assert no_stage.status_code == 422 and no_stage.json()["detail"][0]["loc"] == ["body", "stage"]
    assert upload(api, case_id, [("a.png", png, "image/png")], stage="during").status_code == 422
    # multipart with the stage only (a (None, value) part is a plain field)
    no_photo = api.post(f"/api/v1/cases/{case_id}/photos", files={"stage": (None, "after")}, headers=bearer("operator"))
    assert no_photo.status_code == 422 and no_photo.json()["detail"][0]["loc"] == ["body", "photo"]
    urlencoded = api.post(f"/api/v1/cases/{case_id}/photos", data={"stage": "after"}, headers=bearer("operator"))
    assert urlencoded.status_code == 415
    as_json = api.post(f"/api/v1/cases/{case_id}/photos", json={"stage": "after"}, headers=bearer("operator"))
    assert as_json.status_code == 415


def test_roles_a_missing_case_and_a_final_case(api: TestClient, case_id: str, png: bytes) -> None:
    photo = [("a.png", png, "image/png")]
    assert upload(api, case_id, photo, role="viewer").status_code == 403
    anonymous = api.post(f"/api/v1/cases/{case_id}/photos", data={"stage": "before"}, files=[("photo", photo[0])])
    assert anonymous.status_code == 401
    assert upload(api, "01J00000000000000000000000", photo).status_code == 404
    rejected = api.post(f"/api/v1/cases/{case_id}/actions/reject", headers=bearer("operator"))
    assert rejected.status_code == 200, rejected.text
    refused = upload(api, case_id, photo)
    assert refused.status_code == 409
    assert refused.json()["detail"].endswith("is rejected: it takes no more photos")


def test_the_store_refuses_photos_on_a_closed_case_too(cases: CaseStore, api: TestClient, case_id: str) -> None:
    api.post(f"/api/v1/cases/{case_id}/actions/reject", headers=bearer("operator"))
    photo = Evidence(
        key="0" * 64 + ".png", kind="photo", content_type="image/png", sha256="0" * 64, width=1, height=1, stage="after"
    )
    with pytest.raises(TransitionRefusedError, match="takes no more photos") as refused:
        cases.attach_photos(case_id, [photo], actor="someone", role="operator", at=datetime.now(UTC))
    assert not refused.value.forbidden


def test_old_evidence_records_stay_valid_and_unchanged() -> None:
    old = {
        "key": "a" * 64 + ".jpg",
        "kind": "annotated",
        "content_type": "image/jpeg",
        "sha256": "a" * 64,
        "width": 640,
        "height": 480,
        "boxes": [],
    }
    evidence = Evidence.model_validate(old)
    assert evidence.stage is None
    assert json.loads(evidence.model_dump_json()) == old  # no `stage` key for evidence without one


def test_a_streamed_upload_is_cut_off_at_the_request_limit(
    api: TestClient, case_id: str, png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(case_photos, "MAX_REQUEST_BYTES", 64 * 1024)
    boundary = "gridwatch-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="stage"\r\n\r\nbefore\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:  # chunked: no content-length to refuse it by
        yield head + png
        for _ in range(16):
            yield b"\x00" * 8192
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**bearer("operator"), "content-type": f"multipart/form-data; boundary={boundary}"}
    answer = api.post(f"/api/v1/cases/{case_id}/photos", content=body(), headers=headers)
    assert answer.status_code == 413, answer.text
    assert api.get(f"/api/v1/cases/{case_id}", headers=bearer("viewer")).json()["case"]["evidence"] == []


def report_with(api: TestClient, report: dict[str, Any], files: list[tuple[str, bytes, str]], **data: str) -> Any:
    parts = [("photo", (name, content, kind)) for name, content, kind in files]
    form = {"report": json.dumps(report, ensure_ascii=False), **data}
    return api.post("/api/v1/cases", data=form, files=parts or None, headers=bearer("operator"))


def test_a_report_and_its_photos_arrive_in_one_request(
    api: TestClient, cases: CaseStore, bus_jpg: bytes, png: bytes
) -> None:
    # when: the app sends the report with two photos as one form
    posted = report_with(api, REPORT, [("bus.jpg", bus_jpg, "image/jpeg"), ("sketch.png", png, "image/png")])
    # then: one case holding both photos (before it was handled), served as sent
    assert posted.status_code == 201, posted.text
    case = posted.json()["case"]
    photos = [Evidence.model_validate(e) for e in case["evidence"]]
    assert [(p.kind, p.stage, p.content_type) for p in photos] == [
        ("photo", "before", "image/jpeg"),
        ("photo", "before", "image/png"),
    ]
    served = api.get(f"/api/v1/evidence/{photos[0].key}", headers=bearer("viewer"))
    assert served.content == bus_jpg
    # and the same report again (a retry) is the same case, with no photo added twice
    again = report_with(api, REPORT, [("bus.jpg", bus_jpg, "image/jpeg")])
    assert again.status_code == 200 and again.json()["case"]["id"] == case["id"]
    stored = cases.get(case["id"])
    assert stored is not None and len(stored.evidence) == 2


def test_a_form_without_photos_is_a_plain_report_and_after_photos_are_taken(api: TestClient, png: bytes) -> None:
    plain = report_with(api, {**REPORT, "sender_id": "app:plain"}, [])
    assert plain.status_code == 201 and plain.json()["case"]["evidence"] == []
    after = report_with(api, {**REPORT, "sender_id": "app:after"}, [("done.png", png, "image/png")], stage="after")
    assert after.status_code == 201 and after.json()["case"]["evidence"][0]["stage"] == "after"


def test_a_bad_report_or_photo_in_a_form_makes_no_case(api: TestClient, cases: CaseStore, bus_jpg: bytes) -> None:
    bad = report_with(api, {**REPORT, "lat": 95, "colour": "red"}, [("bus.jpg", bus_jpg, "image/jpeg")])
    assert bad.status_code == 422
    assert sorted(tuple(e["loc"]) for e in bad.json()["detail"]) == [
        ("body", "report", "colour"),
        ("body", "report", "lat"),
    ]
    assert "95" not in bad.text and "red" not in bad.text  # never echoed back
    not_json = api.post(
        "/api/v1/cases",
        data={"report": "{not json"},
        files=[("photo", ("a.jpg", bus_jpg, "image/jpeg"))],
        headers=bearer("operator"),
    )
    assert not_json.status_code == 422
    text = report_with(api, REPORT, [("notes.txt", b"not an image at all", "image/jpeg")])
    assert text.status_code == 415
    unknown = report_with(api, REPORT, [], colour="red")
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "colour"]
    wrong_type = api.post(
        "/api/v1/cases", content=b"<report/>", headers={**bearer("operator"), "content-type": "text/xml"}
    )
    assert wrong_type.status_code == 415
    assert cases.list() == []
