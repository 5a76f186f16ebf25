"""The alert wall's sign-in: an operator's name and password, or a bearer token, is exchanged for a signed,
HttpOnly session cookie.

The browser's EventSource and <img> cannot send an Authorization header; the cookie goes with them instead.
`SameSite=Strict` keeps it off requests from other sites; it is accepted alone for GET and HEAD, and for changes
together with the session's CSRF value (`csrf` in the answers here) in the `X-CSRF-Token` header.
Wrong passwords are counted per client address and per account name (apart from wrong bearer tokens); past the
limit, 429.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from api.auth import SESSION_COOKIE, Principal
from api.deps import BearerDep, CookieDep, DepsDep, ViewerDep, authenticate, unauthorized
from api.models import AUTH_ERRORS, Problem, SessionPublic
from api.routes.cases import UNPARSABLE

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/session", tags=["session"])

NO_STORE = "no-store"
WRONG_PASSWORD = "wrong name or password"


class SignIn(BaseModel):
    """An operator's account name and password (`api.accounts`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=1024)


def _public(principal: Principal) -> SessionPublic:
    expires = datetime.fromtimestamp(principal.expires_at, UTC) if principal.expires_at is not None else None
    return SessionPublic(
        name=principal.name, role=principal.role, via=principal.via, expires_at=expires, csrf=principal.csrf or None
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _password_caller(request: Request, deps: DepsDep, body: SignIn) -> Principal:
    auth, client = deps.auth, _client(request)
    keys = (f"addr:{client}", f"name:{body.name}")
    wait = max(auth.signin_limiter.retry_after(key) for key in keys)
    if wait > 0:
        logger.warning("session: sign-in as %r from %s held back %.0f s after failed tries", body.name, client, wait)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many failed sign-ins: try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    principal = auth.check_password(body.name, body.password.get_secret_value())
    if principal is None:
        for key in keys:
            auth.signin_limiter.failed(key)
        logger.info("session: failed sign-in as %r from %s", body.name, client)
        raise unauthorized(WRONG_PASSWORD)
    return principal


@router.post(
    "",
    operation_id="create_session",
    responses={429: {"model": Problem, "description": "too many failed sign-ins"}, **UNPARSABLE, **AUTH_ERRORS},
)
def create_session(
    request: Request,
    response: Response,
    deps: DepsDep,
    bearer: BearerDep,
    cookie: CookieDep,
    body: SignIn | None = None,
) -> SessionPublic:
    """Sign in with `{"name", "password"}` of an account, or with `Authorization: Bearer <token>` and no body (the
    cookie is not accepted here); sets the session cookie."""
    response.headers["Cache-Control"] = NO_STORE
    if not deps.auth.enabled:
        return _public(authenticate(request, deps, bearer, cookie))  # authentication is off: nothing to sign in to
    if body is not None:
        caller = _password_caller(request, deps, body)
    elif request.headers.get("authorization") is not None:
        caller = authenticate(request, deps, bearer, None)
    else:
        raise unauthorized("sign in with a name and password, or a bearer token")
    value, claims = deps.auth.issue_session(caller)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=deps.auth.session_ttl_s,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    logger.info("session: %s (%s) signed in from %s", caller.name, caller.role, _client(request))
    return _public(Principal(caller.name, caller.role, via="session", expires_at=claims.exp, csrf=claims.csrf))


@router.get("", operation_id="get_session", responses=AUTH_ERRORS)
def get_session(response: Response, caller: ViewerDep) -> SessionPublic:
    """Who the credentials belong to; for a session, its CSRF value too."""
    response.headers["Cache-Control"] = NO_STORE
    return _public(caller)


@router.delete("", operation_id="delete_session", status_code=status.HTTP_204_NO_CONTENT)
def delete_session(request: Request) -> Response:
    """Sign out: the cookie is cleared. Needs no credentials, and is the same whether or not one was set."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT, headers={"Cache-Control": NO_STORE})
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )
    return response
