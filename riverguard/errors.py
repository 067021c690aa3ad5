"""Exceptions of the shared core.

::

    RiverguardError
    ├── ConfigError          bad settings file, unknown key, bad value
    ├── PayloadError         a payload that cannot become a wire model (carries a reason code)
    └── BusError             the message bus failed (Kafka errors are translated to this)
"""

from __future__ import annotations

from pydantic import ValidationError


class RiverguardError(Exception):
    """Base of every error riverguard raises on purpose."""


class ConfigError(RiverguardError):
    """Settings or a configuration file is invalid."""


class BusError(RiverguardError):
    """The message bus could not do what was asked."""


class PayloadError(RiverguardError):
    """A payload was rejected. ``code`` is a stable machine-readable reason for the DLQ."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def describe_validation_error(exc: ValidationError, *, limit: int = 5, show_mappings: bool = True) -> str:
    """One line naming each bad field, its value and what is wrong with it.

    pydantic's own text spans several lines; DLQ reasons, CLI errors and logs want one.
    ``show_mappings=False`` names a model-level error's location without its input (the whole
    model's input, which for settings may hold a secret).
    """
    parts = []
    for error in exc.errors()[:limit]:
        location = ".".join(str(item) for item in error["loc"]) or "<root>"
        value = error.get("input")
        if isinstance(value, dict) and not show_mappings:
            parts.append(f"{location}: {error['msg']}")
            continue
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        parts.append(f"{location}={shown}: {error['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
