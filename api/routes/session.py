"""The alert wall's sign-in: a bearer token is exchanged for a signed, HttpOnly session cookie.

The browser's EventSource and <img> cannot send an Authorization header; the cookie goes with them instead.
`SameSite=Strict` keeps it off requests from other sites, and it is accepted for GET and HEAD only.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, Response, status

from api.auth import SESSION_COOKIE, Principal
from api.deps import DepsDep, PrincipalDep, ViewerDep
from api.models import AUTH_ERRORS, SessionPublic

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/session", tags=["session"])

NO_STORE = "no-store"


def _public(principal: Principal) -> SessionPublic:
    expires = datetime.fromtimestamp(principal.expires_at, UTC) if principal.expires_at is not None else None
    return SessionPublic(name=principal.name, role=principal.role, via=principal.via, expires_at=expires)


@router.post("", operation_id="create_session", responses=AUTH_ERRORS)
def create_session(request: Request, response: Response, deps: DepsDep, caller: PrincipalDep) -> SessionPublic:
    """Sign in with `Authorization: Bearer <token>` (the cookie is not accepted here); sets the session cookie."""
    response.headers["Cache-Control"] = NO_STORE
    if caller.via == "anonymous":
        return _public(caller)  # authentication is off: nothing to sign in to
    if caller.via != "token":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="sign in with a bearer token")
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
    client = request.client.host if request.client else "?"
    logger.info("session: %s (%s) signed in from %s", caller.name, caller.role, client)
    return _public(Principal(caller.name, caller.role, via="session", expires_at=claims.exp))


@router.get("", operation_id="get_session", responses=AUTH_ERRORS)
def get_session(response: Response, caller: ViewerDep) -> SessionPublic:
    """Who the credentials belong to."""
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
