"""Check by camera (核查), the intake's side: what a camera's re-evaluation of a handled case does to it.

The problem gone: the new frame is attached as the case's "after" photo and the case moves to checking; still
there: it moves to checking and straight back to rework (the loop allows rework only from checking, so the
audit shows both steps). Every step is audited as done by `camera:<id>` (role admin: the camera acts for the
command center) with a note saying so; an operator can overrule with the normal actions (rework a checking
case, or start a reworked one again). A case no longer handled when the answer comes (an operator was quicker)
is left as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from core.events import Evidence
from intake.case_model import ActionRequest, Case, CaseState
from intake.case_store import CaseStore

logger = logging.getLogger(__name__)


def camera_checked(
    cases: CaseStore, case_id: str, camera_id: str, still_there: bool, after: Sequence[Evidence], at: datetime
) -> Case | None:
    """Apply one camera check; None when the case is gone or no longer handled."""
    case = cases.get(case_id)
    if case is None or case.state != CaseState.handled:
        return None
    actor = f"camera:{camera_id}"
    if still_there:
        note = f"核查 camera {camera_id}: the problem is still there"
        cases.transition(case_id, "check", ActionRequest(note=note), actor=actor, role="admin", at=at)
        return cases.transition(case_id, "rework", ActionRequest(note=note), actor=actor, role="admin", at=at)
    photos = [e.model_copy(update={"stage": "after"}) for e in after]
    cases.attach_photos(case_id, photos, actor=actor, role="admin", at=at)
    note = f"核查 camera {camera_id}: the problem is gone"
    return cases.transition(case_id, "check", ActionRequest(note=note), actor=actor, role="admin", at=at)
