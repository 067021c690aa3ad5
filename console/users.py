"""Console users: a YAML file of names, roles and argon2 password hashes (no plain password anywhere).

::

    # riverguard console users (riverguard console-user add NAME --role duty|viewer)
    users:
      - name: zhangsan
        display: 张三
        role: duty            # duty: 值班员 (acknowledge, resolve, silence, tick actions); viewer: 查看 (read only)
        password_hash: $argon2id$v=19$m=65536,t=3,p=4$...

Hashes are argon2id (argon2-cffi's defaults, RFC 9106's second recommended option at the time of
writing). A password is checked in constant work whether or not the name exists, so timing does
not tell which names are users.
"""

from __future__ import annotations

import functools
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Final

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.errors import UserFileError
from riverguard.errors import describe_validation_error
from riverguard.yamlfile import read_yaml_mapping

_HASHER: Final = PasswordHasher()
NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
MIN_PASSWORD: Final = 10


@functools.cache
def _dummy_hash() -> str:
    """Compared against when the name is unknown, so an unknown name costs the same as a wrong
    password. Made on first use: an argon2 hash costs ~0.1 s of CPU and 64 MiB, and every
    ``riverguard`` command imports this module through the console's command registration."""
    return _HASHER.hash("riverguard-no-such-user")


class Role(StrEnum):
    DUTY = "duty"  # 值班员: acknowledge, resolve, silence, tick actions
    VIEWER = "viewer"  # 查看: read only

    @property
    def can_act(self) -> bool:
        return self is Role.DUTY


class User(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME.pattern)
    display: str = Field(default="", max_length=40)
    role: Role
    password_hash: str = Field(pattern=r"^\$argon2id\$")

    @property
    def shown(self) -> str:
        """How actions are signed: ``张三 (zhangsan)``."""
        return f"{self.display} ({self.name})" if self.display else self.name


class UserBook(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    users: tuple[User, ...] = ()

    def get(self, name: str) -> User | None:
        return next((u for u in self.users if u.name == name), None)

    def check(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (same work either way)."""
        user = self.get(name)
        try:
            _HASHER.verify(user.password_hash if user else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    def with_user(self, name: str, password: str, role: Role, display: str = "") -> UserBook:
        """A book with ``name`` added, or replaced (a new password or role)."""
        if not NAME.match(name):
            raise UserFileError(f"user name {name!r}: use 1-32 lower-case letters, digits, '_', '.', '-'")
        if len(password) < MIN_PASSWORD:
            raise UserFileError(f"the password of {name!r} is shorter than {MIN_PASSWORD} characters")
        user = User(name=name, display=display, role=role, password_hash=_HASHER.hash(password))
        return UserBook(users=(*(u for u in self.users if u.name != name), user))

    def without(self, name: str) -> UserBook:
        if self.get(name) is None:
            raise UserFileError(f"no user {name!r}")
        return UserBook(users=tuple(u for u in self.users if u.name != name))


def load_users(path: Path) -> UserBook:
    """Read the users file; a missing file is an empty book (the first ``console-user add`` creates it)."""
    if not path.exists():
        return UserBook()
    data = read_yaml_mapping(path, "console users file", error=UserFileError, empty_ok=True)
    try:
        return UserBook.model_validate(data)
    except ValidationError as exc:
        raise UserFileError(f"console users file {path}: {describe_validation_error(exc)}") from exc


def save_users(book: UserBook, path: Path) -> None:
    """Write atomically (a crash leaves the old file), readable by the owner only: hashes are secrets too."""
    text = "# riverguard console users (riverguard console-user add NAME --role duty|viewer)\n" + yaml.safe_dump(
        book.model_dump(mode="json"), allow_unicode=True, sort_keys=False
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
