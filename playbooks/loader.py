"""Reading network files: the shipped Min/Tuo/Jialing files and any file a user adds.

Errors name the file, the item and the problem, e.g.
``network file rivers/fu.yaml: reaches: 'fu-r2' names downstream reach 'fu-r9', which does not exist``.

>>> sorted(load_networks())
['jialing', 'min', 'tuo']
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Final

import yaml
from pydantic import ValidationError

from playbooks.errors import NetworkError, UnknownFeatureError
from playbooks.network import RiverNetwork
from riverguard.errors import describe_validation_error

#: Rivers whose network files ship in ``playbooks/networks``.
SHIPPED_RIVERS: Final = ("min", "tuo", "jialing")


def load_network(river: str) -> RiverNetwork:
    """The shipped network of ``river`` (``min``, ``tuo`` or ``jialing``)."""
    if river not in SHIPPED_RIVERS:
        raise UnknownFeatureError(
            f"no shipped network for river {river!r}; shipped: {', '.join(SHIPPED_RIVERS)} "
            "(pass your own file with --network FILE)"
        )
    text = resources.files("playbooks.networks").joinpath(f"{river}.yaml").read_text(encoding="utf-8")
    return _parse(text, f"playbooks/networks/{river}.yaml")


def load_network_file(path: Path) -> RiverNetwork:
    """Load and validate any network file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NetworkError(f"cannot read network file {path}: {exc.strerror}") from exc
    return _parse(text, str(path))


def load_networks(extra: Sequence[Path] = ()) -> dict[str, RiverNetwork]:
    """The shipped networks plus ``extra`` files, keyed by river id (a file replaces a shipped river)."""
    networks = {river: load_network(river) for river in SHIPPED_RIVERS}
    for path in extra:
        network = load_network_file(path)
        networks[network.river] = network
    return networks


def _parse(text: str, origin: str) -> RiverNetwork:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise NetworkError(f"network file {origin} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise NetworkError(f"network file {origin}: expected a mapping with river, course, reaches ...")
    try:
        return RiverNetwork.model_validate(data)
    except ValidationError as exc:
        raise NetworkError(f"network file {origin}: {_describe(exc, data)}") from exc


def _describe(exc: ValidationError, data: dict[str, object]) -> str:
    """Like :func:`describe_validation_error`, with list indexes turned into item names."""
    text = describe_validation_error(exc)
    for error in exc.errors()[:5]:
        loc = error["loc"]
        if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int):
            items = data.get(loc[0])
            if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
                item = items[loc[1]]
                label = item.get("id") or item.get("station_id") or item.get("name")
                if label is not None:
                    dotted = ".".join(str(part) for part in loc)
                    text = text.replace(
                        dotted, f"{loc[0]}[{label!r}].{'.'.join(str(p) for p in loc[2:])}".rstrip("."), 1
                    )
    return text
