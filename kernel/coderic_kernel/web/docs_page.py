"""``/docs``: Swagger UI over the OpenAPI document, served by this server alone.

The assets come from the ``swagger-ui-py`` wheel, which ships Swagger UI 5 (the first
major version that reads OpenAPI 3.1); ``swagger-ui-bundle`` still ships 4.15. The page
runs no inline script, so it works under ``script-src 'self'``: the initialiser is
``static/docs-init.js`` in this package. Only the files the page uses are served.
"""

from __future__ import annotations

import importlib.util
import os
from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from ..errors import StartupError
from .openapi import DOCS_PATH, OPENAPI_PATH
from .routing import endpoint_route

STATIC_PATH = f"{DOCS_PATH}/static"
SWAGGER_UI_PACKAGE = "swagger_ui"  # the import name of swagger-ui-py
#: What the page loads: Swagger UI's files, then ours (``static/`` next to this module).
ASSETS = frozenset({"swagger-ui.css", "index.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png", "docs-init.js"})

PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Coderic API</title>
<link rel="icon" type="image/png" sizes="32x32" href="{static}/favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="{static}/favicon-16x16.png">
<link rel="stylesheet" href="{static}/swagger-ui.css">
<link rel="stylesheet" href="{static}/index.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<noscript>The interactive documentation needs JavaScript; the document itself is at <a href="{openapi}">{openapi}</a>.</noscript>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="{static}/docs-init.js"></script>
</body>
</html>
"""


def swagger_ui_directory() -> Path:
    """Swagger UI's files in the installed wheel, found without importing its Python code."""
    spec = importlib.util.find_spec(SWAGGER_UI_PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    directory = Path(locations[0], "static") if locations else None
    if directory is None or not (directory / "swagger-ui-bundle.js").is_file():
        raise StartupError("the Swagger UI assets for /docs are missing; install swagger-ui-py (run 'uv sync')")
    return directory


class DocsAssets(StaticFiles):
    """The page's assets and nothing else of the two directories."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path not in ASSETS:
            return "", None
        return super().lookup_path(path)


async def docs_page(request: Request) -> Response:
    root = request.scope.get("root_path", "")
    html = PAGE.format(static=escape(root + STATIC_PATH), openapi=escape(root + OPENAPI_PATH))
    return HTMLResponse(html)


def docs_routes() -> list[BaseRoute]:
    assets = DocsAssets(directory=swagger_ui_directory(), packages=[("coderic_kernel.web", "static")])
    return [
        endpoint_route(DOCS_PATH, docs_page, ["GET"], name="docs"),
        Mount(STATIC_PATH, app=assets, name="docs-static"),
    ]
