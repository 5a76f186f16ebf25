from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from intake.evidence import EvidenceStore
from tests.api.conftest import Parts
from tests.intake.builders import make_image_bytes


@pytest.fixture
def evidence(parts: Parts) -> EvidenceStore:
    return parts.deps.evidence


@pytest.mark.parametrize(("ext", "content_type"), [("jpg", "image/jpeg"), ("png", "image/png")])
def test_evidence_bytes_with_content_type_and_immutable_caching(
    client: TestClient, evidence: EvidenceStore, ext: str, content_type: str
) -> None:
    # given
    data = make_image_bytes(7, ext)  # type: ignore[arg-type]
    key = evidence.put(data, ext)  # type: ignore[arg-type]
    # when
    response = client.get(f"/api/v1/evidence/{key}")
    # then
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == content_type
    assert "immutable" in response.headers["cache-control"]
    assert response.headers["etag"] == f'"{key.split(".")[0]}"'


def test_absent_evidence_is_404(client: TestClient) -> None:
    assert client.get(f"/api/v1/evidence/{'0' * 64}.jpg").status_code == 404


@pytest.mark.parametrize(
    "key",
    [
        f"{'A' * 64}.jpg",
        f"{'0' * 63}.jpg",
        f"{'0' * 64}.gif",
        f"{'0' * 64}.jpg.png",
    ],
)
def test_malformed_evidence_key_is_422(client: TestClient, key: str) -> None:
    assert client.get(f"/api/v1/evidence/{key}").status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/evidence/../../events.sqlite3",
        "/api/v1/evidence/..%2F..%2Fevents.sqlite3",
        f"/api/v1/evidence/..%2F{'0' * 64}.jpg",
    ],
)
def test_traversal_matches_no_route(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404
