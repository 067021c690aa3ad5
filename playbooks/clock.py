"""Times as responders read them: China Standard Time, minutes, the date only when it changes.

>>> from datetime import datetime, timezone
>>> ref = datetime(2024, 5, 14, 2, 0, tzinfo=timezone.utc)
>>> clock(datetime(2024, 5, 14, 6, 20, tzinfo=timezone.utc), ref)
'14:20'
>>> clock(datetime(2024, 5, 14, 17, 5, tzinfo=timezone.utc), ref)
'05-15 01:05'
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from riverguard.timekeeping import BEIJING

#: Sichuan's local time (UTC+8, no daylight saving). Documents show times in it.
CST: Final = BEIJING


def local(moment: datetime) -> datetime:
    return moment.astimezone(CST)


def clock(moment: datetime, reference: datetime) -> str:
    """``HH:MM`` on the reference's local day, else ``MM-DD HH:MM``."""
    here = local(moment)
    if here.date() == local(reference).date():
        return here.strftime("%H:%M")
    return here.strftime("%m-%d %H:%M")


def stamp(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM`` in local time."""
    return local(moment).strftime("%Y-%m-%d %H:%M")
