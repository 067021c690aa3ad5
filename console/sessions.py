"""Signed-in sessions and the login throttle: pure (time passed in), kept in the console's memory.

A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie, with its own CSRF
token that every form of the session carries. Sessions live in memory: restarting the alert
service signs everyone out, which is the safe direction (nothing to steal from a disk).

>>> from datetime import UTC, datetime, timedelta
>>> t = datetime(2024, 6, 1, tzinfo=UTC)
>>> throttle = LoginThrottle(max_failures=2, window=timedelta(minutes=15))
>>> throttle.failed("zhangsan", t); throttle.failed("zhangsan", t)
>>> throttle.retry_after("zhangsan", t + timedelta(minutes=5))
600.0
>>> throttle.retry_after("zhangsan", t + timedelta(minutes=15)) is None
True
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from console.users import User


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    csrf: str
    user: User
    expires_at: datetime


class SessionStore:
    def __init__(self, lifetime: timedelta) -> None:
        self.lifetime = lifetime
        self._sessions: dict[str, Session] = {}

    def open(self, user: User, now: datetime) -> Session:
        self._forget_expired(now)
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user, now + self.lifetime)
        self._sessions[session.token] = session
        return session

    def get(self, token: str, now: datetime) -> Session | None:
        session = self._sessions.get(token)
        if session is None or session.expires_at <= now:
            self._sessions.pop(token, None)
            return None
        return session

    def close(self, token: str) -> None:
        self._sessions.pop(token, None)

    def close_user(self, name: str) -> None:
        """Sign a user out everywhere (removed from the users file, or the password changed)."""
        self._sessions = {t: s for t, s in self._sessions.items() if s.user.name != name}

    def _forget_expired(self, now: datetime) -> None:
        self._sessions = {t: s for t, s in self._sessions.items() if s.expires_at > now}


class LoginThrottle:
    """At most ``max_failures`` failed sign-ins per key (a user name, a client address) in ``window``."""

    def __init__(self, max_failures: int, window: timedelta) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}

    def retry_after(self, key: str, now: datetime) -> float | None:
        """Seconds until ``key`` may try again, or None when it may now."""
        recent = self._recent(key, now)
        if len(recent) < self.max_failures:
            return None
        return (recent[0] + self.window - now).total_seconds()

    def failed(self, key: str, now: datetime) -> None:
        self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        recent = self._failures.setdefault(key, deque())
        while recent and recent[0] + self.window <= now:
            recent.popleft()
        return recent
