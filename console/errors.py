"""Errors of the console.

::

    RiverguardError
     └── ConsoleError
          ├── UserFileError     the users file is unreadable, or a user cannot be added as asked
          └── AuditError        the audit log cannot be written (the action is refused then)
"""

from __future__ import annotations

from riverguard.errors import ConfigError, RiverguardError


class ConsoleError(RiverguardError):
    pass


class UserFileError(ConsoleError, ConfigError):
    pass


class AuditError(ConsoleError):
    pass
