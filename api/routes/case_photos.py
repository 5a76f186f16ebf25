"""Photos on a case: `POST /api/v1/cases/{case_id}/photos`, multipart/form-data with one or more `photo` files and
a `stage` (`before` or `after` it was handled). Each photo must be a JPEG or PNG that decodes; it is stored as sent
(content-addressed, never re-encoded) and served by `GET /api/v1/evidence/{key}`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, get_args

from fastapi import APIRouter, HTTPException, Request, status
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message

from api.deps import CasesDep, EvidenceDep, OperatorDep
from api.models import AUTH_ERRORS, Problem
from api.routes.cases import CaseView, Refused
from core.events import Evidence
from intake.case_model import FINAL_STATES
from intake.case_store import CaseNotFoundError
from intake.evidence import EvidenceStore
from intake.photos import MAX_PHOTO_BYTES, PhotoError, Stage, store_photo
from intake.store import ULID_PATTERN
from intake.workflow import TransitionRefusedError, allowed_actions

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

MAX_PHOTOS = 8
MAX_REQUEST_BYTES = MAX_PHOTOS * MAX_PHOTO_BYTES + 256 * 1024  # the photos and the multipart framing around them
STAGES: tuple[str, ...] = get_args(Stage)
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")  # the second: a report with no photos


class _TooLargeError(Exception):
    pass


def _limited(request: Request, limit: int) -> Request:
    """The same request, its body cut off with 413 once more than `limit` bytes arrived (chunked bodies too)."""
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _TooLargeError
        return message

    return Request(request.scope, receive)


def _too_large(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=detail)


def _invalid(field: str, msg: str) -> HTTPException:
    detail = [{"loc": ["body", field], "msg": msg, "type": "value_error"}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


async def _photos(request: Request) -> tuple[list[bytes], Stage]:
    """The photos' bytes and their stage from the form; 413, 415 or 422 for what cannot be taken."""
    photos, stage, _ = await read_form(request, with_report=False)
    return photos, stage


async def read_form(request: Request, *, with_report: bool) -> tuple[list[bytes], Stage, str]:
    """The photos' bytes, their stage and (`with_report`) the `report` field's text from a multipart form; 413, 415
    or 422 for what cannot be taken. With a report, photos are optional and the stage defaults to `before`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_REQUEST_BYTES:
        raise _too_large(f"request over {MAX_REQUEST_BYTES} bytes: at most {MAX_PHOTOS} photos of {MAX_PHOTO_BYTES}")
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith(FORM_TYPES if with_report else FORM_TYPES[:1]):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail="expected multipart/form-data")
    try:
        form = await _limited(request, MAX_REQUEST_BYTES).form(max_files=MAX_PHOTOS, max_fields=4)
    except _TooLargeError:
        raise _too_large(f"request over {MAX_REQUEST_BYTES} bytes") from None
    except StarletteHTTPException as exc:  # Starlette's 400 for a malformed form or too many files
        if str(exc.detail).startswith("Too many files"):
            raise _too_large(f"at most {MAX_PHOTOS} photos per request") from None
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc.detail)) from None
    try:
        known = {"photo", "stage", "report"} if with_report else {"photo", "stage"}
        unknown = sorted(set(form.keys()) - known)
        if unknown:
            expected = ", ".join(sorted(known))
            raise _invalid(unknown[0], f"unknown form field(s): {', '.join(unknown)}; expected {expected}")
        report = ""
        if with_report:
            texts = form.getlist("report")
            if len(texts) != 1 or not isinstance(texts[0], str):
                raise _invalid("report", "one report field: the report as JSON text")
            report = texts[0]
        stages = form.getlist("stage") or (["before"] if with_report else [])
        if len(stages) != 1 or not isinstance(stages[0], str) or stages[0] not in STAGES:
            raise _invalid("stage", "one stage, before or after")
        uploads = form.getlist("photo")
        if not uploads and not with_report:
            raise _invalid("photo", "at least one photo file")
        photos: list[bytes] = []
        for upload in uploads:
            if not isinstance(upload, UploadFile):
                raise _invalid("photo", "a file, not a text field")
            if upload.size is not None and upload.size > MAX_PHOTO_BYTES:
                raise _too_large(f"photo {upload.filename or ''!r} over {MAX_PHOTO_BYTES} bytes")
            photos.append(await upload.read(MAX_PHOTO_BYTES + 1))
        stage: Stage = "before" if stages[0] == "before" else "after"
        return photos, stage, report
    finally:
        await form.close()


def stored_photos(evidence: EvidenceStore, photos: list[bytes], stage: Stage) -> list[Evidence]:
    stored: list[Evidence] = []
    for index, data in enumerate(photos, start=1):
        try:
            stored.append(store_photo(evidence, data, stage))
        except PhotoError as exc:
            code = status.HTTP_413_CONTENT_TOO_LARGE if exc.too_large else status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
            raise HTTPException(code, detail=f"photo {index}: {exc}") from None
    return stored


@router.post(
    "/{case_id}/photos",
    operation_id="add_case_photos",
    response_model=CaseView,
    responses={
        400: {"model": Problem, "description": "a malformed form, or more fields than photos and a stage"},
        404: {"model": Problem},
        409: {"model": Refused, "description": "the case is closed or rejected"},
        413: {"model": Problem, "description": f"a photo over {MAX_PHOTO_BYTES} bytes or more than {MAX_PHOTOS}"},
        415: {"model": Problem, "description": "not a JPEG or PNG that decodes"},
        **AUTH_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["photo", "stage"],
                        "properties": {
                            "photo": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "minItems": 1,
                                "maxItems": MAX_PHOTOS,
                                "description": f"JPEG or PNG files, each at most {MAX_PHOTO_BYTES} bytes",
                            },
                            "stage": {"type": "string", "enum": list(STAGES)},
                        },
                    }
                }
            },
        }
    },
)
async def add_case_photos(
    request: Request,
    caller: OperatorDep,
    cases: CasesDep,
    evidence: EvidenceDep,
    case_id: Annotated[str, PathParam(pattern=ULID_PATTERN)],
) -> CaseView | JSONResponse:
    """Photos taken before or after the case was handled; stored as sent and listed in the case's evidence with
    their stage. A closed or rejected case takes none (409)."""
    case = await run_in_threadpool(cases.get, case_id)
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"case {case_id} not found")
    if case.state in FINAL_STATES:  # refused before the upload is read; attach_photos checks again
        detail = f"case {case.number} is {case.state.value}: it takes no more photos"
        refused = Refused(detail=detail, allowed=allowed_actions(case.state, caller.role))
        return JSONResponse(refused.model_dump(), status_code=status.HTTP_409_CONFLICT)
    photos, stage = await _photos(request)
    stored = await run_in_threadpool(stored_photos, evidence, photos, stage)
    try:
        changed = await run_in_threadpool(
            cases.attach_photos, case_id, stored, actor=caller.name, role=caller.role, at=datetime.now(UTC)
        )
    except CaseNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"case {case_id} not found") from None
    except TransitionRefusedError as exc:
        refused = Refused(detail=str(exc), allowed=exc.allowed)
        return JSONResponse(refused.model_dump(), status_code=status.HTTP_409_CONFLICT)
    logger.info("case %s: %d %s photo(s) from %s", changed.number, len(stored), stage, caller.name)
    return CaseView(case=changed, allowed=allowed_actions(changed.state, caller.role))
