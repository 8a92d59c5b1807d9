"""What the projects plugin's tests share: the plugin enabled on every test kernel, email to
a folder, the outbox polled briskly, and small helpers that speak HTTP as a client would.

(A module of its own, not ``conftest``: the kernel's ``tests/conftest.py`` has that module name.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def coderic_plugins() -> list[str]:
    return ["projects"]


@pytest.fixture
def coderic_config(tmp_path: Path) -> dict[str, Any]:
    return {"email_url": f"file://{tmp_path / 'mail'}", "outbox_poll_seconds": 0.05, "rate_limit_enabled": False,
            "public_url": "https://coderic.example"}


async def create(client: Any, name: str = "Kernel", **fields: Any) -> dict[str, Any]:
    """A project made through the API; fails the test unless it was created."""
    response = await client.post("/api/v1/projects", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def field_errors(response: Any) -> dict[str, str]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return {e["field"]: e["reason"] for e in response.json().get("errors", [])}
