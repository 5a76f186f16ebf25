"""What the API needs, handed in by the composition root, and `Annotated` aliases for the routes."""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from api.auth import ANONYMOUS, SESSION_COOKIE, AuthConfig, Principal, role_at_least
from api.patrol_view import PatrolView
from core.sensors import ReadingIntake
from core.settings import ApiRole
from intake.bus import CaseBus, EventBus
from intake.case_store import CaseStore
from intake.evidence import EvidenceStore
from intake.store import EventStore

logger = logging.getLogger(__name__)

STATE_KEY = "gridwatch_deps"
# The session cookie alone authorizes reading only; a request that changes state with it must also send the
# session's CSRF value in this header (a page of another site can neither read the value nor set the header).
COOKIE_METHODS = frozenset({"GET", "HEAD"})
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class ApiDeps:
    """Ready-made parts; the API never creates stores, engines or settings itself.

    `health` returns extra facts for `/healthz` (camera counts, patrol state) as JSON values.
    `auth` holds the API tokens and the session key; the default, no tokens, means authentication is off.
    `patrol` is the patrol's cameras and figures (`/api/v1/cameras`, `/api/v1/patrol`, `/metrics`); none: an API
    without a patrol in this process, whose patrol routes answer 503.
    """

    store: EventStore
    evidence: EvidenceStore
    bus: EventBus
    health: Callable[[], dict[str, object]]
    version: str
    auth: AuthConfig = field(default_factory=AuthConfig)
    cases: CaseStore | None = None
    # cases as they change, for the live stream's `case` messages; none: the stream carries events only
    case_bus: CaseBus | None = None
    # the Standard Webhooks secret (`whsec_...`) external producers sign `POST /api/v1/intake/webhook` with
    inbound_secret: str | None = field(default=None, repr=False)
    patrol: PatrolView | None = None
    # where `POST /api/v1/sensors/{id}/readings` puts readings; None: this server takes none
    readings: ReadingIntake | None = None


def get_deps(request: Request) -> ApiDeps:
    deps = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(deps, ApiDeps):
        raise RuntimeError("the app was not built by api.app.create_app: no ApiDeps on app.state")
    return deps


def get_store(deps: Annotated[ApiDeps, Depends(get_deps)]) -> EventStore:
    return deps.store


def get_evidence(deps: Annotated[ApiDeps, Depends(get_deps)]) -> EvidenceStore:
    return deps.evidence


def get_bus(deps: Annotated[ApiDeps, Depends(get_deps)]) -> EventBus:
    return deps.bus


def get_cases(deps: Annotated[ApiDeps, Depends(get_deps)]) -> CaseStore:
    if deps.cases is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="this server keeps no cases")
    return deps.cases


def get_patrol(deps: Annotated[ApiDeps, Depends(get_deps)]) -> PatrolView:
    if deps.patrol is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="this server runs no patrol")
    return deps.patrol


DepsDep = Annotated[ApiDeps, Depends(get_deps)]
StoreDep = Annotated[EventStore, Depends(get_store)]
EvidenceDep = Annotated[EvidenceStore, Depends(get_evidence)]
BusDep = Annotated[EventBus, Depends(get_bus)]
CasesDep = Annotated[CaseStore, Depends(get_cases)]
PatrolDep = Annotated[PatrolView, Depends(get_patrol)]


_bearer = HTTPBearer(auto_error=False, description="a secret whose sha256 is in `api.tokens`")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="the signed session set by `POST /api/v1/session`"
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
CookieDep = Annotated[str | None, Depends(_cookie)]


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": challenge})


def authenticate(request: Request, deps: DepsDep, bearer: BearerDep, cookie: CookieDep) -> Principal:
    """The caller, from the bearer header if there is one, else from the session cookie; 401 otherwise."""
    auth = deps.auth
    if not auth.enabled:
        return ANONYMOUS
    client = _client(request)
    # only bearer secrets can be guessed (a session cookie is HMAC-signed): only they count and are held back,
    # so an expired cookie's burst of 401s never locks its owner out of signing in again
    bearer_sent = request.headers.get("authorization") is not None
    wait = auth.limiter.retry_after(client) if bearer_sent else 0.0
    if wait > 0:
        logger.warning("auth: %s refused for %.0f s more after repeated failed credentials", client, wait)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many failed sign-ins from this address: try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    if bearer_sent:
        principal = auth.check_token(bearer.credentials) if bearer is not None else None
        if principal is None:
            auth.limiter.failed(client)
            logger.info("auth: invalid bearer token from %s for %s", client, request.url.path)
            raise unauthorized("invalid bearer token", error="invalid_token")
        return principal
    if cookie is not None:
        principal = auth.check_session(cookie)
        if principal is None:
            logger.info("auth: invalid or expired session from %s for %s", client, request.url.path)
            raise unauthorized("session invalid or expired: sign in again", error="invalid_token")
        if request.method in COOKIE_METHODS:
            return principal
        sent = request.headers.get(CSRF_HEADER, "")
        if principal.csrf and sent and hmac.compare_digest(sent.encode(), principal.csrf.encode()):
            return principal
        logger.info("auth: %s's session from %s without its CSRF value for %s", principal.name, client, request.method)
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="a change with the session cookie needs X-CSRF-Token")
    raise unauthorized("authentication required: Authorization: Bearer <token>")


def authenticate_optional(request: Request, deps: DepsDep, bearer: BearerDep, cookie: CookieDep) -> Principal | None:
    """The caller if the credentials are good; None for none or bad ones (for routes open to everyone)."""
    try:
        return authenticate(request, deps, bearer, cookie)
    except HTTPException:
        return None


PrincipalDep = Annotated[Principal, Depends(authenticate)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(authenticate_optional)]


def require(role: ApiRole) -> Callable[[Principal], Principal]:
    """A dependency that lets through callers with `role` or a higher one; 403 for a lower one."""

    def check(principal: PrincipalDep) -> Principal:
        if not role_at_least(principal.role, role):
            logger.info("auth: %s (%s) refused: needs %s", principal.name, principal.role, role)
            detail = f"role {principal.role} may not do this: needs {role}"
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)
        return principal

    check.__name__ = f"require_{role}"
    return check


ViewerDep = Annotated[Principal, Depends(require("viewer"))]
OperatorDep = Annotated[Principal, Depends(require("operator"))]
RuleAuthorDep = Annotated[Principal, Depends(require("rule_author"))]
AdminDep = Annotated[Principal, Depends(require("admin"))]
