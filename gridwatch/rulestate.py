"""Rule state that must outlive a restart (learned baselines), saved to `data_dir/rule-state.json`.

Only rules whose kind has `save_state` are written, keyed by rule fingerprint and camera id. The file is replaced
atomically (a temporary file in the same folder, then a rename over it), so a crash mid-save leaves the previous file.
Loading puts each state back under its fingerprint; states of fingerprints that no longer run (a changed or removed
rule) are ignored, and an unreadable file is logged as a warning and ignored: the rules then learn afresh.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rules.engine import RuleEngine
from rules.registry import Rule, kind_of
from rules.state import InMemoryRuleState

logger = logging.getLogger(__name__)

RULE_STATE_FILE = "rule-state.json"
FORMAT_VERSION = 1
_SAVING = threading.Lock()  # one save at a time: a later call takes its snapshot after an earlier one is written


def _saved_rules(engine: RuleEngine) -> dict[str, Rule]:
    """The running rules whose kind saves its state, by fingerprint."""
    running = engine.fingerprints
    found: dict[str, Rule] = {}
    for rule in engine.ruleset.rules:
        fingerprint = rule.fingerprint()
        if fingerprint in running and kind_of(rule).save_state is not None:
            found[fingerprint] = rule
    return found


def rule_state_document(engine: RuleEngine, store: InMemoryRuleState) -> tuple[dict[str, Any], int]:
    """The file's content and the number of states in it."""
    rules: dict[str, Any] = {}
    states = 0
    for fingerprint, rule in _saved_rules(engine).items():
        save = kind_of(rule).save_state
        assert save is not None
        cameras = {camera: save(state) for camera, state in store.items(fingerprint)}
        if cameras:
            rules[fingerprint] = {"rule_id": rule.id, "kind": rule.kind, "cameras": cameras}
            states += len(cameras)
    document = {"version": FORMAT_VERSION, "saved_at": datetime.now(UTC).isoformat(), "rules": rules}
    return document, states


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, flush it to disk, then move it over `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone after the replace; left over only when something failed


def save_rule_state(path: Path, engine: RuleEngine, store: InMemoryRuleState) -> int:
    """Write the saved states of the engine's running rules to `path`; returns how many were written.
    Raises OSError when the file cannot be written (the previous file, if any, stays as it was)."""
    with _SAVING:
        document, states = rule_state_document(engine, store)
        write_atomically(path, json.dumps(document, separators=(",", ":")))
    logger.debug("rule state: saved %d states of %d rules to %s", states, len(document["rules"]), path)
    return states


def _read(path: Path) -> dict[str, Any] | None:
    """The file's rules section, or None (with a warning) when it cannot be read or is not ours."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        logger.info("rule state: no %s yet, baselines start empty", path)
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.warning("rule state file %s is unreadable, ignored (baselines start empty): %s", path, exc)
        return None
    rules = document.get("rules") if isinstance(document, dict) else None
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION or not isinstance(rules, dict):
        version = document.get("version") if isinstance(document, dict) else None
        logger.warning(
            "rule state file %s is not a version %d rule state (version %r), ignored", path, FORMAT_VERSION, version
        )
        return None
    return rules


def _load_rule(fingerprint: str, rule: Rule, entry: object, store: InMemoryRuleState) -> tuple[int, int]:
    """(states loaded, states refused) of one rule's entry in the file."""
    load = kind_of(rule).load_state
    cameras = entry.get("cameras") if isinstance(entry, dict) else None
    if load is None or not isinstance(entry, dict) or entry.get("kind") != rule.kind or not isinstance(cameras, dict):
        return 0, 1
    loaded = refused = 0
    for camera, data in cameras.items():
        try:
            if not isinstance(data, dict):
                raise ValueError(f"expected a mapping, got {type(data).__name__}")
            store.put(fingerprint, str(camera), load(data))
            loaded += 1
        except (ValueError, TypeError, KeyError) as exc:
            logger.debug("rule state: %s of rule %s at %s refused: %s", rule.kind, rule.id, camera, exc)
            refused += 1
    return loaded, refused


def load_rule_state(path: Path, engine: RuleEngine, store: InMemoryRuleState) -> int:
    """Put the states saved in `path` for the engine's running rules into `store`; returns how many. Never
    raises for a missing, corrupt or foreign file: it is logged and the rules learn afresh."""
    rules = _read(path)
    if rules is None:
        return 0
    running = _saved_rules(engine)
    loaded = refused = 0
    for fingerprint, entry in rules.items():
        rule = running.get(fingerprint)
        if rule is not None:
            ok, bad = _load_rule(fingerprint, rule, entry, store)
            loaded, refused = loaded + ok, refused + bad
    if refused:
        logger.warning("rule state file %s: %d saved states were unreadable and ignored", path, refused)
    stale = len(rules.keys() - running.keys())
    logger.info("rule state: loaded %d states from %s (%d changed or removed rules ignored)", loaded, path, stale)
    return loaded
