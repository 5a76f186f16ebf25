"""Suppressions proposed from false alarms: a mask over a detection's box for that rule and camera, which a rule
author confirms or rejects. They live beside the cases (the same database, `suppressions` table); the runtime
reads the confirmed ones and hands them to the rule engine as exclusions (`rules.exclusion`)."""

from __future__ import annotations

import builtins
import logging
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from ulid import ULID

from core.events import Box
from intake.case_model import Case
from intake.case_store import CaseStore
from rules.exclusion import ExclusionTable, Mask, mask_from_box

logger = logging.getLogger(__name__)

SuppressionState = Literal["proposed", "confirmed", "rejected"]
Decision = Literal["confirm", "reject"]
DECIDED: dict[Decision, SuppressionState] = {"confirm": "confirmed", "reject": "rejected"}


class SuppressionError(ValueError):
    """A proposal or decision that cannot be made as asked; the message says why."""


class Suppression(BaseModel):
    """A mask (normalised frame coordinates, as a zone's polygon) where a rule ignores a camera's detections."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    rule_id: str
    camera_id: str
    case_id: str
    case_number: str
    state: SuppressionState
    mask: list[tuple[float, float]] = Field(min_length=3)
    box: Box = Field(description="the detection's box on the evidence, in its pixels")
    proposed_by: str
    proposed_at: datetime
    decided_by: str = ""
    decided_at: datetime | None = None


def pick_box(case: Case, box: int) -> tuple[Box, int, int]:
    """The case's annotated evidence's `box`-th box and the picture's size; SuppressionError when there is none."""
    if case.source != "camera" or not case.reporter.rule_id or not case.reporter.camera_id:
        raise SuppressionError(f"case {case.number} is not a camera rule's case: nothing to suppress")
    if not case.false_alarm:
        raise SuppressionError(f"case {case.number} is not marked as a false alarm")
    for shot in case.evidence:
        if shot.kind == "annotated" and shot.boxes:
            if not 0 <= box < len(shot.boxes):
                raise SuppressionError(f"box {box}: the evidence of case {case.number} has {len(shot.boxes)} boxes")
            return shot.boxes[box], shot.width, shot.height
    raise SuppressionError(f"case {case.number} has no annotated evidence with boxes")


def default_box(case: Case) -> int:
    """The first box in the zone (the detection that fired), else the first one."""
    for shot in case.evidence:
        if shot.kind == "annotated" and shot.boxes:
            return next((i for i, b in enumerate(shot.boxes) if b.in_zone), 0)
    return 0


class SuppressionStore:
    """The suppressions in a case store's database. Reads are few (a wall panel, the runtime's poll): they share
    the store's writer connection."""

    def __init__(self, cases: CaseStore) -> None:
        self.cases = cases

    def propose(self, case_id: str, box: int | None, by: str, at: datetime) -> Suppression:
        """A proposal from a false alarm's box (default: the one in the zone); the same proposal again for a case
        that already has an open one for that box."""
        case = self.cases.get(case_id)
        if case is None:
            raise LookupError(f"case {case_id} not found")
        index = default_box(case) if box is None else box
        chosen, width, height = pick_box(case, index)
        mask: Mask = mask_from_box(chosen.x1, chosen.y1, chosen.x2, chosen.y2, width, height)
        with self.cases.transaction() as conn:
            for (body,) in conn.execute(
                "SELECT body FROM suppressions WHERE case_id = ? AND state = 'proposed'", (case.id,)
            ).fetchall():
                found = Suppression.model_validate_json(body)
                if found.box == chosen:
                    return found
            made = Suppression(
                id=str(ULID()),
                rule_id=case.reporter.rule_id,
                camera_id=case.reporter.camera_id,
                case_id=case.id,
                case_number=case.number,
                state="proposed",
                mask=list(mask),
                box=chosen,
                proposed_by=by,
                proposed_at=at,
            )
            conn.execute(
                "INSERT INTO suppressions (id, rule_id, camera_id, state, case_id, body) VALUES (?, ?, ?, ?, ?, ?)",
                (made.id, made.rule_id, made.camera_id, made.state, made.case_id, made.model_dump_json()),
            )
        logger.info("suppression %s proposed by %s for rule %s on camera %s", made.id, by, made.rule_id, made.camera_id)
        return made

    def decide(self, suppression_id: str, decision: Decision, by: str, at: datetime) -> Suppression:
        """Confirm or reject a proposal; LookupError for an unknown id, SuppressionError when already decided."""
        with self.cases.transaction() as conn:
            row = conn.execute("SELECT body FROM suppressions WHERE id = ?", (suppression_id,)).fetchone()
            if row is None:
                raise LookupError(f"suppression {suppression_id} not found")
            found = Suppression.model_validate_json(row[0])
            if found.state != "proposed":
                raise SuppressionError(f"suppression {suppression_id} is already {found.state}")
            done = found.model_copy(update={"state": DECIDED[decision], "decided_by": by, "decided_at": at})
            conn.execute(
                "UPDATE suppressions SET state = ?, body = ? WHERE id = ?",
                (done.state, done.model_dump_json(), done.id),
            )
        logger.info("suppression %s %s by %s", done.id, done.state, by)
        return done

    def list(self, state: SuppressionState | None = None) -> builtins.list[Suppression]:
        """Newest first."""
        sql, params = "SELECT body FROM suppressions", ()  # type: tuple[str, tuple[str, ...]]
        if state is not None:
            sql, params = sql + " WHERE state = ?", (state,)
        with self.cases.transaction() as conn:
            rows = conn.execute(sql + " ORDER BY id DESC", params).fetchall()
        return [Suppression.model_validate_json(r[0]) for r in rows]

    def exclusions(self) -> ExclusionTable:
        """The confirmed masks per (rule id, camera id), in the order they were proposed."""
        table: dict[tuple[str, str], builtins.list[Mask]] = {}
        for s in reversed(self.list("confirmed")):
            table.setdefault((s.rule_id, s.camera_id), []).append(tuple(s.mask))
        return table
