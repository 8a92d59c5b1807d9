"""The projects benchmark's baseline: bare Starlette + Piccolo answering the projects list and
detail with the queries the plugin runs for a guest, on the same SQLite file, without the
kernel (no middleware, permission gate, validation models or serialisation models).

The database is ``CODERIC_BENCH_DB`` (a path); the plugin's table classes are bound to it.
"""

from __future__ import annotations

import os
from typing import Any

from coderic_projects.tables import TABLES, Label, Member, Project
from piccolo.engine.sqlite import SQLiteEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ENGINE = SQLiteEngine(path=os.environ["CODERIC_BENCH_DB"])
for table in TABLES:
    table._meta.db = ENGINE
P = Project
SUMMARY = (P.id, P.slug, P.name, P.summary, P.status, P.visibility, P.followers_count, P.cover_file_id,
           P.created_at, P.updated_at)


async def labels(ids: list[int]) -> dict[int, dict[str, list[str]]]:
    found: dict[int, dict[str, list[str]]] = {i: {"tag": [], "skill": []} for i in ids}
    if ids:
        for row in await Label.select(Label.project, Label.kind, Label.value).where(Label.project.is_in(ids)).order_by(Label.id):
            found[row["project"]][row["kind"]].append(row["value"])
    return found


def summary(row: dict[str, Any], found: dict[str, list[str]]) -> dict[str, Any]:
    out = {k: row[k] for k in ("id", "slug", "name", "summary", "status", "visibility", "followers_count")}
    out.update(tags=found["tag"], skills=found["skill"], cover_url=None,
               created_at=row["created_at"].isoformat(), updated_at=row["updated_at"].isoformat())
    return out


async def list_projects(request: Request) -> Response:
    limit = 20
    rows = await P.select(*SUMMARY).where(
        P.deleted_at.is_null() & (P.visibility == "public") & P.archived_at.is_null()
    ).order_by(P.id, ascending=False).limit(limit + 1)
    page = rows[:limit]
    found = await labels([r["id"] for r in page])
    return JSONResponse({"items": [summary(r, found[r["id"]]) for r in page],
                         "next_cursor": str(page[-1]["id"]) if len(rows) > limit else None})


async def get_project(request: Request) -> Response:
    project_id = int(request.path_params["project_id"])
    row = await P.select().where((P.id == project_id) & P.deleted_at.is_null()).first()
    if row is None or row["visibility"] != "public":
        return JSONResponse({"status": 404}, status_code=404)
    found = (await labels([project_id]))[project_id]
    out = summary(row, found)
    out.update(description=row["description"], description_html=row["description_html"],
               repository_url=row["repository_url"], website=row["website"], created_by=row["created_by"],
               archived_at=None, members_count=await Member.count().where(Member.project == project_id),
               github=None, your_role=None, following=False)
    return JSONResponse(out)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[
    Route("/healthz", healthz),
    Route("/api/v1/projects", list_projects),
    Route("/api/v1/projects/{project_id:int}", get_project),
])
