"""Service logging: text or JSON lines on stderr — whichever stderr is current when a line is written."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from riverguard.observability import setup_logging
from riverguard.settings import ObservabilitySettings


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_swapped_and_closed_stderr_does_not_break_later_logging(
    restored_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging(ObservabilitySettings(log_format="json"), service="detect")
    logging.getLogger("riverguard.test").warning("one")
    first.close()  # e.g. a CLI run under a test runner: its captured stream is closed afterwards
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("riverguard.test").warning("two")
    line = json.loads(second.getvalue())
    assert line["message"] == "two"
    assert line["service"] == "detect"
    assert "Logging error" not in second.getvalue()
