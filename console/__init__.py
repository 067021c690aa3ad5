"""The duty-officer console (值班台): incidents, playbooks, silences and stations in a browser.

Mounted on the alert service's HTTP application at ``/console`` (:class:`Console`), with users
from a file of argon2 hashes (:mod:`console.users`, ``riverguard console-user add``), sessions,
CSRF tokens, a sign-in throttle and an audit log. Every asset ships in the package: no CDN.
"""

from typing import TYPE_CHECKING

from riverguard.lazy import lazy_exports

if TYPE_CHECKING:
    from console.app import Console, ConsoleDesk
    from console.audit import AuditLog
    from console.errors import AuditError, ConsoleError, UserFileError
    from console.stationboard import StationBoard
    from console.users import Role, User, UserBook, load_users, save_users

__all__ = [
    "AuditError",
    "AuditLog",
    "Console",
    "ConsoleDesk",
    "ConsoleError",
    "Role",
    "StationBoard",
    "User",
    "UserBook",
    "UserFileError",
    "load_users",
    "save_users",
]

__getattr__ = lazy_exports(__name__, __file__)
