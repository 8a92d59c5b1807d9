"""What every test of this suite shares."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from coderic_kernel.identity import passwords


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: Any) -> None:
    """Cheap argon2 parameters, as Django's test runner uses a cheap hasher: the code paths are
    the same, the suite is minutes faster, and a throttling test's time is the limits' time. The
    real parameters are checked by ``test_the_real_hashing_parameters_are_at_or_above_owasps``
    and the rehash test (``monkeypatch.undo()`` brings them back)."""
    quick = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    monkeypatch.setattr(passwords, "HASHER", quick)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", quick.hash("dummy"))


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """``serve`` sets up process-wide logging; put it back for the tests that follow."""
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access"]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in map(logging.getLogger, names)]
    yield
    for logger, handlers, level, propagate, disabled in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate, logger.disabled = propagate, disabled
