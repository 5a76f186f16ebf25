"""Reports from other systems (a district platform, a sensor vendor's cloud): `POST /api/v1/intake/webhook`, signed
per Standard Webhooks. No bearer token: the signature with the inbound secret is the credential.

The raw body is read (at most `MAX_BODY_BYTES`), checked with `intake.webhooks.verify_inbound` (the signature, and
a timestamp at most 5 minutes from now), then parsed strictly as `{"type": "case.report", "timestamp", "data"}`
with `data` a `CaseCreate`. The sender's id defaults to `webhook:<webhook-id>`, so a redelivery of one webhook
makes one case.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from api.deps import DepsDep
from api.models import Problem
from intake.case_model import Case, CaseCreate, Source
from intake.webhooks import DEFAULT_TOLERANCE_S, InboundSignatureError, verify_inbound

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/intake", tags=["intake"])

MAX_BODY_BYTES = 1024 * 1024
ACTOR = "webhook"
# the sources another system may report for; anything else (none, camera, sensor, external) becomes `external`
RELAYED_SOURCES = frozenset({Source.hotline, Source.citizen, Source.grid_worker})


class InboundReport(BaseModel):
    """The signed body: Standard Webhooks' payload structure, with a case report as its data."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    type: Literal["case.report"]
    timestamp: datetime = Field(description="when the producer made the report, ISO 8601")
    data: dict[str, JsonValue] = Field(
        description="the fields of a report (`CaseCreate`); `sender_id` defaults to `webhook:<webhook-id>`, "
        "`source` is `external` unless it says hotline, citizen or grid_worker"
    )


class WebhookAccepted(BaseModel):
    """The case a report made, or the one an earlier delivery of it made (`created` false)."""

    model_config = ConfigDict(frozen=True)

    id: str
    number: str
    state: str
    created: bool


def inlined(node: Any, defs: dict[str, Any]) -> Any:
    """`node` with its `#/$defs/...` references replaced by what they name (the models here are not recursive)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**inlined(defs[ref.removeprefix("#/$defs/")], defs), **inlined(rest, defs)}
        return {k: inlined(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [inlined(v, defs) for v in node]
    return node


def request_schema() -> dict[str, Any]:
    """The JSON schema of the body, for the OpenAPI document: the envelope with `CaseCreate` as its data, where
    `sender_id` may be left out and `source` defaults to `external`."""
    case = CaseCreate.model_json_schema()
    data: dict[str, Any] = inlined(case, case.get("$defs", {}))
    data["required"] = [name for name in data.get("required", []) if name != "sender_id"]
    data["properties"]["source"]["default"] = Source.external.value
    data["description"] = InboundReport.model_fields["data"].description
    envelope = InboundReport.model_json_schema()
    envelope.pop("$defs", None)  # only JsonValue, for the data that is replaced here
    envelope["properties"]["data"] = data
    return envelope


def _refused(code: int, detail: str, request: Request, webhook_id: str) -> HTTPException:
    client = request.client.host if request.client else "?"
    logger.info("intake webhook %r from %s refused (%d): %s", webhook_id[:64], client, code, detail)
    return HTTPException(code, detail=detail)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is longer than `limit` (read no further than that)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _invalid(exc: ValidationError, prefix: tuple[str, ...]) -> HTTPException:
    # the errors without the input: the message names the field and the rule, never echoes what was sent
    errors = [
        {"loc": ["body", *prefix, *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=errors)


def _report(body: bytes, webhook_id: str) -> CaseCreate:
    """The case report in a verified body, strictly (422 naming the field)."""
    try:
        envelope = InboundReport.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise _invalid(exc, ()) from None
    data: dict[str, Any] = dict(envelope.data)
    data.setdefault("sender_id", f"webhook:{webhook_id}")
    data.setdefault("source", Source.external.value)
    try:
        report = CaseCreate.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        raise _invalid(exc, ("data",)) from None
    if report.source not in RELAYED_SOURCES:
        report = report.model_copy(update={"source": Source.external})
    return report


@router.post(
    "/webhook",
    operation_id="intake_webhook",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"model": WebhookAccepted, "description": "already reported (the same webhook-id or sender_id)"},
        401: {"model": Problem, "description": "a missing or bad signature, or a timestamp more than 5 min off"},
        413: {"model": Problem, "description": f"a body over {MAX_BODY_BYTES} bytes"},
        422: {"description": "signed, but not a case report: `detail` names the field"},
        503: {"model": Problem, "description": "no inbound webhook secret configured, or no case store"},
    },
    openapi_extra={
        "parameters": [
            {"name": name, "in": "header", "required": True, "schema": {"type": "string"}, "description": what}
            for name, what in (
                ("webhook-id", "the message id: the same on every redelivery"),
                ("webhook-timestamp", "seconds since 1970, UTC; at most 5 minutes from the server's clock"),
                ("webhook-signature", "`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, space-separated"),
            )
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": request_schema()}},
        },
    },
)
async def intake_webhook(request: Request, deps: DepsDep, response: Response) -> WebhookAccepted:
    """A case reported by another system, signed per Standard Webhooks with the inbound secret: 202 with the
    new case, 200 with the case an earlier delivery of the same `webhook-id` (or `sender_id`) made."""
    webhook_id = request.headers.get("webhook-id", "")
    secret = deps.inbound_secret
    if secret is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="no inbound webhook secret configured")
    if deps.cases is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="this server keeps no cases")
    body = await read_body(request, MAX_BODY_BYTES)
    if body is None:
        raise _refused(413, f"body over {MAX_BODY_BYTES} bytes", request, webhook_id)
    try:
        verify_inbound(request.headers, body, secret, now=datetime.now(UTC), tolerance_s=DEFAULT_TOLERANCE_S)
    except InboundSignatureError as exc:
        reason = str(exc)
        if reason.startswith("signed body is"):  # signed correctly, but not a JSON object
            raise _refused(422, reason, request, webhook_id) from None
        raise _refused(401, reason, request, webhook_id) from None
    except ValueError:
        logger.error("intake webhook: the configured inbound secret is not a whsec_ secret")
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="inbound webhook secret invalid") from None
    report = _report(body, webhook_id)
    case: Case
    case, created = await run_in_threadpool(
        deps.cases.create, report, actor=ACTOR, role="operator", at=datetime.now(UTC)
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    logger.info("intake webhook %r: case %s (%s)", webhook_id[:64], case.number, "new" if created else "repeat")
    return WebhookAccepted(id=case.id, number=case.number, state=case.state.value, created=created)
