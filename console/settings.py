"""The console's settings (the ``console`` section of the riverguard settings once it has one)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The users file (``riverguard console-user add``); None: no console is served.
    users_file: Path | None = None
    audit_file: Path = Path("console-audit.jsonl")
    session_minutes: int = Field(default=480, ge=5, le=10_080)
    #: Mark cookies Secure: set it when the console is reached over HTTPS (a reverse proxy).
    secure_cookies: bool = False
    #: Failed sign-ins allowed per user name and per client address within the window.
    login_failures: int = Field(default=5, ge=1, le=100)
    login_window_min: int = Field(default=15, ge=1, le=1440)
    #: A station with no reading for this long stands out on the station board.
    silent_station_min: int = Field(default=60, ge=5, le=10_080)

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(minutes=self.session_minutes)

    @property
    def login_window(self) -> timedelta:
        return timedelta(minutes=self.login_window_min)
