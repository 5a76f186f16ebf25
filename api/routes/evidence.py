"""Evidence images by content key: immutable, so cached for a year."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from api.deps import EvidenceDep, StoreDep, ViewerDep
from api.models import AUTH_ERRORS, Problem
from intake.evidence import KEY_PATTERN, content_type
from intake.retention import pruned_record

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/evidence", tags=["evidence"])

# private: evidence is for signed-in callers only, so no shared cache (proxy) may keep a copy
IMMUTABLE = "private, max-age=31536000, immutable"


@router.get(
    "/{key}",
    operation_id="get_evidence",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "the image"},
        404: {"model": Problem},
        410: {"model": Problem, "description": "removed by evidence retention"},
        **AUTH_ERRORS,
    },
)
def get_evidence(
    _caller: ViewerDep, evidence: EvidenceDep, store: StoreDep, key: Annotated[str, PathParam(pattern=KEY_PATTERN)]
) -> FileResponse:
    path = evidence.path(key)
    if not path.is_file():
        pruned = pruned_record(store.db, key)
        if pruned is not None:
            detail = f"evidence {key} removed by retention on {pruned.at.date().isoformat()} ({pruned.reason})"
            raise HTTPException(status.HTTP_410_GONE, detail=detail)
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"evidence {key} not found")
    headers = {"Cache-Control": IMMUTABLE, "ETag": '"' + key.split(".", 1)[0] + '"'}
    return FileResponse(path, media_type=content_type(key), headers=headers)
