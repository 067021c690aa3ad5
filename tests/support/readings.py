"""Readings for detector tests: one registered station's quiet water, with overrides."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from riverguard.models import Detection, Measurement, Reading, SourceFormat
from riverguard.stations import load_registry

T0 = datetime(2024, 6, 1, tzinfo=UTC)
STATION = load_registry().by_id["tuo-tuojiangdaqiao"]


class Processing(Protocol):
    def process(self, reading: Reading) -> list[Detection]: ...


def reading(i: int, **override: float) -> Reading:
    """Quiet water with a little deterministic wobble; ``override`` replaces values."""
    wobble = max(-1.0, min(1.0, random.Random(i).gauss(0.0, 0.4)))
    values = {
        "pH": 7.8 + 0.02 * wobble,
        "DO": 8.2 - 0.05 * wobble,
        "conductivity": 420 + 3 * wobble,
        "turbidity": 30 + 1.5 * wobble,
        "NH3N": 0.3 + 0.02 * wobble,
        "CODMn": 2.5 + 0.1 * wobble,
    }
    values.update(override)
    return Reading(
        station_id=STATION.station_id, river=STATION.river, time=T0 + timedelta(minutes=i),
        values={k: Measurement(value=v) for k, v in values.items()}, source_format=SourceFormat.SIMULATOR,
    )


def run(detector: Processing, readings: Iterable[Reading]) -> list[Detection]:
    out: list[Detection] = []
    for r in readings:
        out.extend(detector.process(r))
    return out
