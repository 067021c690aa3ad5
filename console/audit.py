"""The console's audit log: every action and sign-in, who, when, what — one JSON object per line.

Why a file and not a Kafka topic: the log must take a failed sign-in or a refused action when the
brokers are the very thing that is down, it is read by people with ``grep``/``jq`` and shipped
by the host's log collector, and one alert service (the console's host) writes it. The actions
that change an incident (acknowledge, resolve, tick, silence) are in the incident's history on
the compacted ``incidents`` topic as well, so the two records check each other.

Each line is flushed and fsynced before the action's answer goes out; a log that cannot be
written refuses the action (:class:`~console.errors.AuditError`) rather than leaving it unrecorded.
The file is only ever appended to; rotate it with ``logrotate``'s ``copytruncate``.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from console.errors import AuditError


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, at: datetime, who: str, action: str, target: str = "", *, outcome: str = "ok",
               **detail: Any) -> None:
        entry = {"at": at.isoformat(), "who": who, "action": action, "target": target, "outcome": outcome, **detail}
        line = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise AuditError(f"cannot write the console audit log {self.path}: {exc.strerror}") from exc

    def entries(self, limit: int = 200) -> list[dict[str, Any]]:
        """The last ``limit`` entries, newest first (the console's audit page)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AuditError(f"cannot read the console audit log {self.path}: {exc.strerror}") from exc
        return [json.loads(line) for line in reversed(lines[-limit:]) if line.strip()]
