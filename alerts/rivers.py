"""River names for messages, from the river network files (``name_zh`` / ``name_en``).

The names come from the same files the playbooks read — the shipped ones and any added with
``--network`` — so a new river shows its name in every message, not its id.

>>> names = shipped_river_names()
>>> names["tuo"]("zh"), names["jialing"]("en")
('沱江', 'Jialing River')
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Protocol

from alerts.catalogue import Text
from playbooks import load_networks
from riverguard.settings import Settings


class NamedRiver(Protocol):
    @property
    def name_zh(self) -> str: ...
    @property
    def name_en(self) -> str: ...


def river_names(networks: Mapping[str, NamedRiver]) -> dict[str, Text]:
    """River id → its names; a file without ``name_en`` shows the Chinese name in English text too."""
    return {river: Text(n.name_zh, n.name_en or n.name_zh) for river, n in networks.items()}


def river_names_of(settings: Settings) -> dict[str, Text]:
    """The names of the networks the service loads: the shipped ones and ``settings.network_dir``'s."""
    return river_names(load_networks(sorted(settings.network_dir.glob("*.yaml")) if settings.network_dir else []))


@cache
def shipped_river_names() -> Mapping[str, Text]:
    """The shipped networks' names (what a message context without networks of its own uses)."""
    return river_names(load_networks())
