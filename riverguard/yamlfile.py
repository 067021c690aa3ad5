"""Reading the YAML files operators write (settings, routing, Apprise config), with errors that
name the kind of file, its path and what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from riverguard.errors import ConfigError


def read_yaml_mapping(
    path: Path, what: str, *, error: type[ConfigError] = ConfigError, empty_ok: bool = False
) -> dict[str, Any]:
    """The mapping at the top of ``path``; ``error`` names ``what`` ("routing file") and the path.

    >>> read_yaml_mapping(Path("/nonexistent.yaml"), "routing file")
    Traceback (most recent call last):
    ...
    riverguard.errors.ConfigError: cannot read routing file /nonexistent.yaml: No such file or directory
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from exc
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise error(f"{what} {path} must hold a mapping at the top, got {type(data).__name__}")
    return data
