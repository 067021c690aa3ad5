"""``riverguard console-user add|list|remove``: the console's users file.

A password is read from the terminal (twice) or, for scripts, from standard input with
``--password-stdin``; it is never an argument (arguments show in ``ps`` and shell history).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from console.errors import UserFileError
from console.users import Role

users_app = typer.Typer(help="Users of the duty-officer console (值班员 duty, 查看 viewer).", no_args_is_help=True)

FileOption = Annotated[Path, typer.Option("--file", help="The console users file (console.users_file).")]
DEFAULT_FILE = Path("console-users.yaml")


@contextmanager
def _exit_on_error() -> Iterator[None]:
    """A bad users file or request: ``error: ...`` and exit status 2."""
    try:
        yield
    except UserFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Sign-in name: lower-case letters, digits, '_', '.', '-'.")],
    role: Annotated[Role, typer.Option(help="duty: 值班员 (acknowledge, resolve, silence, tick); viewer: 查看.")],
    display: Annotated[str, typer.Option(help="Name shown on actions, e.g. 张三.")] = "",
    file: FileOption = DEFAULT_FILE,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Add a user, or replace an existing one's password, role and display name."""
    from console.users import load_users, save_users  # argon2 only for this command

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    with _exit_on_error():
        book = load_users(file)
        replaced = book.get(name) is not None
        save_users(book.with_user(name, password, role, display), file)
    typer.echo(f"{'updated' if replaced else 'added'} {name} ({role.value}) in {file}")


@users_app.command("list")
def list_users(file: FileOption = DEFAULT_FILE) -> None:
    """Names, display names and roles (never the hashes)."""
    from console.users import load_users

    with _exit_on_error():
        book = load_users(file)
    for user in book.users:
        typer.echo(f"{user.name}\t{user.role.value}\t{user.display}")


@users_app.command("remove")
def remove(name: str, file: FileOption = DEFAULT_FILE) -> None:
    """Remove a user (their sessions end at their next request)."""
    from console.users import load_users, save_users

    with _exit_on_error():
        save_users(load_users(file).without(name), file)
    typer.echo(f"removed {name} from {file}")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="console-user")
