from __future__ import annotations

from pathlib import Path

from rules.loader import RuleSet, load_rule_files
from rules.reload import RuleReloader
from tests.rules.builders import DATA

GOOD = (DATA / "valid" / "10-walkway.yaml").read_text(encoding="utf-8")
BAD = (DATA / "bad" / "unknown_key.yaml").read_text(encoding="utf-8")


def ids(ruleset: RuleSet) -> list[str]:
    return [r.id for r in ruleset.rules]


def test_reloader_swaps_good_files_and_keeps_the_last_good_set(tmp_path: Path) -> None:
    file = tmp_path / "site.yaml"
    file.write_text(GOOD, encoding="utf-8")
    reloader = RuleReloader()
    assert ids(reloader.current) == []

    # a valid file: swapped in
    assert reloader.reload([tmp_path]) == []
    good = reloader.current
    assert ids(good) == ["walkway-intrusion"]
    assert (reloader.generation, reloader.last_error) == (1, [])

    # unchanged: nothing happens
    assert reloader.reload([tmp_path]) == []
    assert reloader.current is good and reloader.generation == 1

    # broken: the last good set keeps running and the error is remembered
    file.write_text(BAD, encoding="utf-8")
    expected = [f"{file}:10:5: rules[1].max_dwell_s: extra key not allowed"]
    assert reloader.reload([tmp_path]) == expected
    assert reloader.current is good
    assert (reloader.generation, reloader.last_error) == (1, expected)

    # still broken, unchanged: the same error, still the good set
    assert reloader.reload([tmp_path]) == expected
    assert reloader.current is good

    # fixed: swapped, error cleared
    file.write_text(BAD.replace("    max_dwell_s: 30\n", ""), encoding="utf-8")
    assert reloader.reload([tmp_path]) == []
    assert ids(reloader.current) == ["walkway-intrusion", "square-loiter"]
    assert (reloader.generation, reloader.last_error) == (2, [])


def test_reloader_started_from_loaded_files_sees_no_change(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(GOOD, encoding="utf-8")
    initial = load_rule_files([tmp_path])
    reloader = RuleReloader(initial)
    assert reloader.reload([tmp_path]) == []
    assert reloader.current is initial and reloader.generation == 0


def test_deleted_file_is_an_error_not_an_empty_rule_set(tmp_path: Path) -> None:
    file = tmp_path / "site.yaml"
    file.write_text(GOOD, encoding="utf-8")
    reloader = RuleReloader(load_rule_files([file]))
    file.unlink()
    assert reloader.reload([file]) == [f"{file}:1:1: cannot read: No such file or directory"]
    assert ids(reloader.current) == ["walkway-intrusion"]
