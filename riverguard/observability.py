"""Logs, metrics and health for every service.

Metric names are shared by all stages (label ``stage``) so one dashboard covers the pipeline.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final

from prometheus_client import Counter, Gauge, Histogram

from riverguard.settings import ObservabilitySettings

MESSAGES_IN: Final = Counter("riverguard_messages_in_total", "Records or messages a stage received.", ["stage"])
MESSAGES_OUT: Final = Counter("riverguard_messages_out_total", "Records a stage produced.", ["stage", "topic"])
DEAD_LETTERS: Final = Counter("riverguard_dead_letters_total", "Payloads sent to the DLQ.", ["stage", "reason"])
PROCESSING_SECONDS: Final = Histogram(
    "riverguard_processing_seconds",
    "Time to process one batch, from poll to commit.",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CONSUMER_LAG: Final = Gauge("riverguard_consumer_lag", "Records behind the end of the partition.", ["stage", "topic"])
NOTIFICATIONS: Final = Counter(
    "riverguard_notifications_total", "Notification delivery attempts.", ["channel", "outcome"]
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra ``fields`` on a record are merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(settings: ObservabilitySettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
