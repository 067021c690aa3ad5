"""Errors of the console.

::

    RiverguardError
     └── ConsoleError
          ├── UserFileError     the users file is unreadable, or a user cannot be added as asked
          └── AuditError        the audit log cannot be written (the action is refused then)

    Refused                     not an error of the console: a request answered early with a page
"""

from __future__ import annotations

from riverguard.errors import ConfigError, RiverguardError


class ConsoleError(RiverguardError):
    pass


class UserFileError(ConsoleError, ConfigError):
    pass


class AuditError(ConsoleError):
    pass


class Refused(Exception):  # noqa: N818 - raised to answer early, not an error of the console
    """Answer the request with ``status`` and the catalogue's message ``key`` (and ``detail`` after it)."""

    def __init__(self, status: int, key: str, detail: str = "") -> None:
        super().__init__(f"{key}: {detail}" if detail else key)
        self.status = status
        self.key = key
        self.detail = detail
