"""The baseline: a bare Starlette app whose one route answers what the kernel's /healthz does."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/healthz", healthz, methods=["GET"])])
