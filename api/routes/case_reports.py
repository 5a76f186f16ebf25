"""Reports: `POST /api/v1/cases` from grid workers' app, the hotline and citizens, idempotent on the sender's id.

The body is the report as JSON, or a multipart/form-data form with the report as JSON text in its `report` field
and up to eight `photo` files (JPEG or PNG, stored as sent) taken `before` (the default) or `after` it was handled,
so a worker's report and its photos arrive, and are stored, in one request. Camera and sensor cases come from
their incidents, never from this route.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from api.deps import CasesDep, EvidenceDep, OperatorDep
from api.models import AUTH_ERRORS, Problem, Unprocessable
from api.routes.case_photos import FORM_TYPES, MAX_PHOTOS, STAGES, read_form, stored_photos
from api.routes.cases import CaseView
from api.routes.intake_webhook import inlined, read_body
from core.events import Evidence
from intake.case_model import Case, CaseCreate, Source
from intake.photos import MAX_PHOTO_BYTES, Stage
from intake.workflow import allowed_actions

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

MAX_JSON_BYTES = 256 * 1024  # a report without its photos


def _report_schema() -> dict[str, Any]:
    schema = CaseCreate.model_json_schema()
    flat: dict[str, Any] = inlined(schema, schema.get("$defs", {}))
    return flat


def _parse(text: str | bytes, prefix: tuple[str, ...]) -> CaseCreate:
    """The report in `text` (JSON), or 422 naming each bad field, never echoing what was sent."""
    try:
        return CaseCreate.model_validate_json(text)
    except ValidationError as exc:
        errors = [
            {"loc": ["body", *prefix, *error["loc"]], "msg": error["msg"], "type": error["type"]}
            for error in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=errors) from None


async def _read(request: Request) -> tuple[CaseCreate, list[bytes], Stage]:
    """The report, the photos' bytes and their stage, from a JSON body or a multipart form."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(FORM_TYPES):
        photos, stage, text = await read_form(request, with_report=True)
        return _parse(text, ("report",)), photos, stage
    if content_type and not content_type.startswith("application/json"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail="expected JSON or multipart/form-data")
    body = await read_body(request, MAX_JSON_BYTES)
    if body is None:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=f"a report over {MAX_JSON_BYTES} bytes")
    return _parse(body, ()), [], "before"


@router.post(
    "",
    operation_id="report_case",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseView,
    responses={
        200: {"model": CaseView, "description": "already reported with this sender_id"},
        400: {"model": Problem, "description": "a malformed form"},
        413: {"model": Problem, "description": f"a photo over {MAX_PHOTO_BYTES} bytes or more than {MAX_PHOTOS}"},
        415: {"model": Problem, "description": "neither JSON nor a form, or a photo that is not a JPEG or PNG"},
        422: {"model": Unprocessable, "description": "not a report, or a camera or sensor report"},
        **AUTH_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _report_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["report"],
                        "properties": {
                            "report": {"type": "string", "description": "the report, as JSON text"},
                            "photo": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "maxItems": MAX_PHOTOS,
                                "description": f"JPEG or PNG files, each at most {MAX_PHOTO_BYTES} bytes",
                            },
                            "stage": {"type": "string", "enum": list(STAGES), "default": "before"},
                        },
                    }
                },
            },
        }
    },
)
async def report_case(
    request: Request, caller: OperatorDep, cases: CasesDep, evidence: EvidenceDep, response: Response
) -> CaseView:
    """A report, as JSON or as a form with its photos; posting the same `sender_id` again returns the case made
    the first time (200, not 201) and adds no photos. Camera and sensor cases come from their incidents."""
    report, photos, stage = await _read(request)
    if report.source in (Source.camera, Source.sensor):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="camera and sensor cases come from incidents")
    stored: list[Evidence] = []
    if photos:
        stored = await run_in_threadpool(stored_photos, evidence, photos, stage)
    case: Case
    case, created = await run_in_threadpool(
        cases.create, report, actor=caller.name, role=caller.role, at=datetime.now(UTC), evidence=stored
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    elif stored:
        logger.info("case %s reported with %d %s photo(s) by %s", case.number, len(stored), stage, caller.name)
    return CaseView(case=case, allowed=allowed_actions(case.state, caller.role))
