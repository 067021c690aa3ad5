"""What a send and the notification plugin tell each other beyond Apprise's yes/no.

Apprise hands a plugin the message and the URL, and takes back a bool. The alert service needs
two more things: the plugin should stamp a message with the service's clock (the simulated clock
in the demo, not the wall clock), and a gateway that refuses for good (an unapproved template, a
bad signature) should say so, so the outbox gives up instead of retrying eight times. The service
opens a :class:`DeliveryReport` around each send (:func:`reporting`); a plugin reads and fills the
:func:`current_report`. Apprise runs plugins in a worker thread with a copy of the caller's
context, so both see the same report object.

>>> from datetime import UTC, datetime
>>> with reporting(datetime(2024, 7, 1, tzinfo=UTC)) as report:
...     current_report() is report, report.retry
(True, True)
>>> current_report() is None
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

_CURRENT: ContextVar[DeliveryReport | None] = ContextVar("riverguard_delivery", default=None)


@dataclass
class DeliveryReport:
    sent_at: datetime  # the service's clock when it sent
    retry: bool = True  # False: the gateway refused for good; retrying the same request cannot help
    error: str = ""  # what the gateway said (never a secret)

    def refused(self, error: str, *, retry: bool) -> None:
        self.error = error
        self.retry = self.retry and retry


def current_report() -> DeliveryReport | None:
    """The report of the send in progress (None outside the alert service, e.g. the apprise CLI)."""
    return _CURRENT.get()


@contextmanager
def reporting(sent_at: datetime) -> Iterator[DeliveryReport]:
    report = DeliveryReport(sent_at)
    token = _CURRENT.set(report)
    try:
        yield report
    finally:
        _CURRENT.reset(token)
