"""``/healthz`` says the process is alive; ``/readyz`` says every backend answers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from coderic_sdk import HealthCheck
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import describe
from .problems import problem_response

CHECK_TIMEOUT_SECONDS = 3.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def run_checks(checks: Sequence[HealthCheck]) -> dict[str, str]:
    """``{name: "ok" | reason}`` for every check, run concurrently, each with a timeout."""

    async def one(check: HealthCheck) -> str:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):  # never wait_for: see services/background.py
                await check.check()
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT_SECONDS:g}s"
        except Exception as exc:
            return describe(exc)
        return "ok"

    results = await asyncio.gather(*(one(check) for check in checks))
    return {check.name: result for check, result in zip(checks, results)}


def readyz_endpoint(checks: Sequence[HealthCheck]):  # type: ignore[no-untyped-def]
    async def readyz(request: Request) -> Response:
        results = await run_checks(checks)
        failed = sorted(name for name, result in results.items() if result != "ok")
        if failed:
            return problem_response(
                request.scope, 503, detail=f"Not ready: {', '.join(failed)} unreachable.", extra={"checks": results}
            )
        return JSONResponse({"status": "ready", "checks": results})

    return readyz
