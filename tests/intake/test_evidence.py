from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from intake.evidence import EvidenceError, EvidenceStore, content_type
from tests.intake.builders import make_image_bytes

HEX = "ab" * 32


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "evidence")


def test_put_stores_by_content_hash_under_two_levels(store: EvidenceStore) -> None:
    # given
    data = make_image_bytes(1)
    # when
    key = store.put(data, "jpg")
    # then
    digest = hashlib.sha256(data).hexdigest()
    assert key == f"{digest}.jpg"
    assert store.path(key) == store.root / digest[:2] / digest[2:4] / key
    assert store.read(key) == data
    assert store.exists(key)


def test_put_is_idempotent_and_leaves_no_temp_files(store: EvidenceStore) -> None:
    data = make_image_bytes(2, "png")
    first = store.put(data, "png")
    second = store.put(data, "png")
    assert first == second
    assert [p.name for p in store.root.rglob("*") if p.is_file()] == [first]


def test_put_keyed_accepts_the_matching_key(store: EvidenceStore) -> None:
    data = make_image_bytes(3)
    key = hashlib.sha256(data).hexdigest() + ".jpg"
    assert store.put_keyed(key, data) == key
    assert store.read(key) == data


def test_put_keyed_rejects_a_key_of_other_data(store: EvidenceStore) -> None:
    data = make_image_bytes(4)
    wrong = hashlib.sha256(make_image_bytes(5)).hexdigest() + ".jpg"
    with pytest.raises(EvidenceError, match="does not match"):
        store.put_keyed(wrong, data)
    assert not store.exists(wrong)
    assert not any(p.is_file() for p in store.root.rglob("*"))


def test_put_rejects_an_unknown_extension(store: EvidenceStore) -> None:
    with pytest.raises(EvidenceError, match="extension"):
        store.put(b"GIF89a", "gif")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        f"../{HEX}.jpg",
        f"{HEX[:-2]}/../{HEX[-2:]}.jpg",
        f"{HEX.upper()}.jpg",  # upper-case hex
        f"{HEX[:-1]}.jpg",  # 63 digits
        f"{HEX}0.jpg",  # 65 digits
        f"{'g' * 64}.jpg",  # not hex
        f"{HEX}.gif",
        f"{HEX}.JPG",
        f"{HEX}.jpg\n",
        f"{HEX}.jpg/..",
        f"/{HEX}.jpg",
        HEX,
        "",
    ],
)
def test_path_rejects_malformed_keys(store: EvidenceStore, key: str) -> None:
    with pytest.raises(EvidenceError):
        store.path(key)
    with pytest.raises(EvidenceError):
        store.exists(key)
    with pytest.raises(EvidenceError):
        store.put_keyed(key, b"data")


def test_exists_is_false_for_an_absent_key(store: EvidenceStore) -> None:
    assert not store.exists(f"{HEX}.png")


@pytest.mark.parametrize(("key", "expected"), [(f"{HEX}.jpg", "image/jpeg"), (f"{HEX}.png", "image/png")])
def test_content_type_follows_the_extension(key: str, expected: str) -> None:
    assert content_type(key) == expected
