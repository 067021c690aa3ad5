"""Time as riverguard speaks it: one duration grammar and Beijing time.

Every command option and configuration value that is a duration uses :func:`parse_duration`:
one or more ``<number><unit>`` parts, units ``w`` (weeks), ``d``, ``h``, ``m``, ``s``, e.g.
``90s``, ``30m``, ``2h``, ``1.5d``, ``1h30m``. Numbers may have a fraction; ``0s`` is a duration
(an offset of nothing), and a caller that needs more says so.

>>> parse_duration("1h30m")
datetime.timedelta(seconds=5400)
>>> parse_duration("2w")
datetime.timedelta(days=14)
>>> parse_duration("half an hour")
Traceback (most recent call last):
...
ValueError: 'half an hour' is not a duration like 90s, 30m, 2h, 1.5d or 1h30m
"""

from __future__ import annotations

import re
from datetime import timedelta, timezone
from typing import Final

__all__ = ["BEIJING", "parse_duration"]

#: China Standard Time (UTC+8, no daylight saving): HJ 212 times without a zone, and what people
#: read in messages and documents.
BEIJING: Final = timezone(timedelta(hours=8), "CST")

_PART: Final = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_SECONDS: Final = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """``text`` as a duration (zero or more); ValueError naming the text otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 2h, 1.5d or 1h30m")
    return timedelta(seconds=sum(float(number) * _SECONDS[unit] for number, unit in parts))
