"""The member's own data: ``POST /api/v1/me/export``, ``GET /api/v1/me/export/{id}`` and
``DELETE /api/v1/me``. Served by the ``auth`` built-in (it owns the ``me`` prefix); only a
member who signed in themselves may call them, never a personal access token."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from coderic_sdk import NotFound, Problem, RequestContext, Route, Schema
from pydantic import Field
from starlette.responses import JSONResponse, Response

from ..identity.audit import record
from ..identity.routes.common import NEEDS_USER, interactive_user, service_of
from ..identity.routes.sessions import CLEARED
from ..identity.signin import set_cookies
from ..identity.tables import User
from . import deletion, exports
from .tables import DataExport

#: "Recent authentication" for deleting the account: a sign-in (or 2FA re-authentication) this recent.
RECENT = timedelta(minutes=10)
REAUTHENTICATE = "https://coderic.org/problems/reauthentication-required"
EXPORT_ID = r"^[0-9a-f]{32}$"
NO_STORE = {"Cache-Control": "no-store"}


class ExportOut(Schema):
    id: str
    status: Literal["building", "ready", "failed"] = Field(
        description="`building` (the job has it), `ready` (download it) or `failed` (ask again)."
    )
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime = Field(description="When the archive is deleted.")
    download_url: str | None = Field(
        None, description="Once ready: a signed URL of the zip, for this request only (it expires within minutes)."
    )
    download_expires_at: datetime | None = None


class ExportPath(Schema):
    export_id: str = Field(pattern=EXPORT_ID)


class DeletionOut(Schema):
    status: Literal["deleting"] = Field(description="The account is closed; its data is being deleted.")


async def _out(ctx: RequestContext[Any, Any, Any], export: DataExport, status_code: int = 200,
               headers: dict[str, str] | None = None) -> JSONResponse:
    url, until = await exports.signed_url(ctx.plugin.kernel, export, str(ctx.request.base_url).rstrip("/"))  # type: ignore[arg-type]
    body = ExportOut(id=export.uid, status=export.status, created_at=export.created_at,  # type: ignore[arg-type]
                     finished_at=export.finished_at, expires_at=export.expires_at, download_url=url, download_expires_at=until)
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers={**NO_STORE, **(headers or {})})


async def request_export(ctx: RequestContext[None, None, Any]) -> JSONResponse:
    user = interactive_user(ctx)
    export = await exports.request_export(ctx.plugin, user.id)
    await record("data.export_requested", ctx.request, user.id, {"export": export.uid})
    return await _out(ctx, export, 202, {"Location": f"/api/v1/me/export/{export.uid}"})


async def show_export(ctx: RequestContext[None, None, ExportPath]) -> JSONResponse:
    user = interactive_user(ctx)
    export = await exports.mine(user.id, ctx.path.export_id)
    if export is None:
        raise NotFound(f"Export {ctx.path.export_id} does not exist.")
    return await _out(ctx, export)


async def delete_me(ctx: RequestContext[None, None, Any]) -> Response:
    user = interactive_user(ctx)
    row = await User.select(User.status).where(User.uid == user.id).first()
    if row is not None and row["status"] != "deleted":  # already deleted: nothing more to do (a second call)
        session = await service_of(ctx).sessions.by_uid(user.session_id) if user.session_id else None
        if session is None or datetime.now(timezone.utc) - session.authenticated_at > RECENT:
            raise Problem(403, "Prove it is you: sign in again (or send a 2FA code to POST /api/v1/auth/2fa/reauthenticate) "
                               "and delete the account within 10 minutes.", type=REAUTHENTICATE)
        await deletion.request_deletion(ctx.plugin, ctx.request, user.id)
    return set_cookies(JSONResponse(DeletionOut(status="deleting").model_dump(), status_code=202), CLEARED)


def routes() -> list[Route]:
    me = {"prefix": "me", "tags": ("me",), "authenticated": True}
    personal = {403: "A personal access token was used: sign in yourself."}
    return [
        Route("POST", "/export", request_export, name="request_data_export", response=ExportOut, status_code=202,
              summary="Export my data",
              description="Starts building a zip of everything the platform keeps about me: one JSON file per plugin "
                          "and my files. I get an email when it is ready; it is kept 7 days. One a day.",
              responses={**NEEDS_USER, **personal, 429: "An export was asked for in the last 24 hours (`export_id` says which)."},
              **me),
        Route("GET", "/export/{export_id}", show_export, name="data_export", path_params=ExportPath, response=ExportOut,
              summary="One of my data exports",
              description="Its state and, once ready, a signed download URL that works for a few minutes (ask again "
                          "for a new one).",
              responses={**NEEDS_USER, **personal, 404: "No export of mine has this id."}, **me),
        Route("DELETE", "", delete_me, name="delete_me", response=DeletionOut, status_code=202,
              summary="Delete my account",
              description="Needs a sign-in (or a 2FA re-authentication) in the last 10 minutes. The account closes at "
                          "once: every session and token ends. Then a job deletes or anonymises everything every plugin "
                          "keeps about me, my files included. It cannot be undone.",
              responses={**NEEDS_USER, 403: "A personal access token was used, or the last sign-in is not recent."},
              **me),
    ]
