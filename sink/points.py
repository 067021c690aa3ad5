"""Records on the riverguard topics → InfluxDB points (pure: no I/O).

Schema (one bucket; ``riverguard/autogen`` on InfluxDB 1.8, ``riverguard`` on 2.x):

- ``reading`` — tags river, station, section (when known), parameter; fields ``value``
  (float, canonical unit) and ``flag`` (HJ 212 data flag); time = reading time.
- ``detection`` — tags river, station, section, parameter (one point per finding), kind,
  phase, detector; fields score, confidence, value, baseline, limit, multiple, detection_id,
  event_id, message; time = detection time.
- ``incident`` — tags river, station (first station), parameter (pollutant), level, status;
  fields incident_id, opened_at, peak_value, peak_multiple, … (every scalar of the record);
  time = ``updated_at``: one point per state change.
- ``notification`` — tags channel, outcome, river; fields notification_id, record_id,
  incident_id, target (scheme only), attempt, error, …; time = ``at`` of the attempt.

Why this shape:

- Tags are the few bounded dimensions a dashboard groups by (20 stations × ~25 parameters);
  ids (incident, detection, notification, event) are unbounded, so they are fields — as tags
  they would create one series each and blow up the index.
- Timestamps come from the record (reading time, detection time, the incident's
  ``updated_at``, the notification's ``at``), never from the wall clock at write time. A point
  is identified by measurement + tag set + timestamp, so replaying a topic after a crash writes
  the same points again and InfluxDB overwrites them: writes are idempotent.
- Records with ids (detections, incidents, notifications) can share a timestamp with another
  record of the same tag set (two messages sent in the same microsecond). Python times have
  microsecond resolution, so the three nanosecond digits are free: they carry a stable hash of
  the id (:func:`time_ns`). Distinct ids land on distinct points, the same id on the same one.
- A detection with several findings gives one point per finding (tag ``parameter``), so a
  panel can show which parameter fired.

>>> from datetime import datetime, timezone
>>> from riverguard.models import Measurement, Reading, SourceFormat
>>> r = Reading(station_id="tuo-sanhuangmiao", river="tuo", section="三皇庙",
...             time=datetime(2024, 1, 5, 10, 30, tzinfo=timezone.utc),
...             values={"NH3N": Measurement(value=0.42)}, source_format=SourceFormat.JSON)
>>> print(reading_points(r)[0].to_line_protocol())
reading,parameter=NH3N,river=tuo,section=三皇庙,station=tuo-sanhuangmiao flag="N",value=0.42 1704450600000000000
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from riverguard.errors import PayloadError, describe_validation_error
from riverguard.models import Detection, Reading, decode
from riverguard.settings import TopicSettings
from sink.line import Point, field_text, measurement_text, tag_text

READING: Final = "reading"
DETECTION: Final = "detection"
INCIDENT: Final = "incident"
NOTIFICATION: Final = "notification"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Free-text fields are cut here: they are for a dashboard table, the topic keeps the full text.
_MAX_TEXT: Final = 500


def time_ns(moment: datetime, salt: str | None = None) -> int:
    """Nanoseconds since the epoch, exact (no float); ``salt`` fills the sub-microsecond digits.

    >>> t = datetime(2024, 1, 5, 10, 30, 0, 123456, tzinfo=UTC)
    >>> time_ns(t)
    1704450600123456000
    >>> time_ns(t, "incident-1") == time_ns(t, "incident-1") != time_ns(t, "incident-2")
    True
    """
    delta = moment - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    extra = zlib.crc32(salt.encode()) % 1000 if salt is not None else 0
    return micros * 1000 + extra


def reading_points(reading: Reading) -> list[Point]:
    """One point per parameter of the reading (the flag travels with the value)."""
    stamp = time_ns(reading.time)
    points = []
    for parameter, measurement in reading.values.items():
        point = Point(READING).tag("river", reading.river).tag("station", reading.station_id)
        if reading.section:
            point.tag("section", reading.section)
        point.tag("parameter", parameter)
        point.field("value", float(measurement.value)).field("flag", measurement.flag.value)
        points.append(point.time(stamp))
    return points


def reading_lines(reading: Reading) -> list[str]:
    """The line protocol of :func:`reading_points`, with the tags all its points share escaped
    once and the flag's text looked up: readings are nearly all the sink writes, and building a
    :class:`Point` per value cost more than decoding the record (``tests/unit/test_sink_points.py``
    checks the text is equal).
    """
    stamp = time_ns(reading.time)
    section = f",section={tag_text(reading.section)}" if reading.section else ""
    head = f"{measurement_text(READING)},parameter="
    tail = f",river={tag_text(reading.river)}{section},station={tag_text(reading.station_id)} flag="
    lines = []
    for parameter, measurement in reading.values.items():
        value = repr(float(measurement.value))  # field_text of a float, without a call per value
        if value.endswith(".0"):
            value = value[:-2]
        lines.append(f"{head}{tag_text(parameter)}{tail}{_flag_text(measurement.flag.value)},value={value} {stamp}")
    return lines


@functools.lru_cache(maxsize=64)
def _flag_text(flag: str) -> str:
    return field_text(flag)


def detection_points(detection: Detection) -> list[Point]:
    """One point per finding, or one without ``parameter`` when the detection has none."""
    stamp = time_ns(detection.time, detection.detection_id)
    findings = detection.findings or (None,)
    points = []
    for finding in findings:
        point = Point(DETECTION).tag("river", detection.river).tag("station", detection.station_id)
        if detection.section:
            point.tag("section", detection.section)
        if finding is not None:
            point.tag("parameter", finding.parameter)
            point.field("value", float(finding.value))
            for name in ("baseline", "limit", "multiple"):
                number = getattr(finding, name)
                if number is not None:
                    point.field(name, float(number))
        point.tag("kind", detection.kind.value).tag("phase", detection.phase.value).tag("detector", detection.detector)
        point.field("score", float(detection.score)).field("confidence", float(detection.confidence))
        point.field("detection_id", detection.detection_id).field("event_id", detection.event_id)
        if detection.message:
            point.field("message", detection.message[:_MAX_TEXT])
        points.append(point.time(stamp))
    return points


def incident_point(incident: Mapping[str, Any]) -> Point:
    """The incident's state at its ``updated_at`` (one point per state change).

    Reads the ``Incident`` record of :mod:`riverguard.incidents` as a mapping (the envelope's
    ``payload``), so fields added later still arrive as fields; older producers that say
    ``severity``/``station_id``/``parameter`` instead of ``level``/``first_station``/``pollutant``
    are understood too.

    >>> p = incident_point({"incident_id": "RG-1", "river": "min", "pollutant": "Cd",
    ...     "status": "open", "level": "orange", "opened_at": "2024-01-05T10:30:00Z",
    ...     "updated_at": "2024-01-05T10:40:00Z", "peak_multiple": 2.3})
    >>> p.to_line_protocol().split(" ")[0]
    'incident,level=orange,parameter=Cd,river=min,status=open'
    """
    incident_id = _text(incident, "incident_id")
    updated = _time(incident, "updated_at", fallback="opened_at")
    point = Point(INCIDENT).tag("river", _text(incident, "river"))
    station = _first_text(incident, "first_station", "station_id", "station")
    if station:
        point.tag("station", station)
    parameter = _first_text(incident, "pollutant", "parameter")
    if parameter:
        point.tag("parameter", parameter)
    point.tag("level", _label(_first_text(incident, "level", "severity")))
    point.tag("status", _label(incident.get("status")))
    point.field("incident_id", incident_id)
    _extra_fields(point, incident, skip=_INCIDENT_KNOWN)
    return point.time(time_ns(updated, incident_id))


_INCIDENT_KNOWN: Final = frozenset(
    {"incident_id", "river", "first_station", "station_id", "station", "pollutant", "parameter", "level",
     "severity", "status", "updated_at"}
)


def notification_point(notification: Mapping[str, Any]) -> Point:
    """One delivery attempt (a ``NotificationRecord``): which channel, whether it worked, for what.

    An Apprise URL in ``target`` carries tokens, so only its scheme is kept (``dingtalk://…``)
    even though the sender redacts it too.

    >>> p = notification_point({"notification_id": "n-1", "record_id": "n-1#1", "incident_id": "RG-1",
    ...     "channel": "sms", "attempt": 1, "outcome": "sent", "river": "tuo", "at": "2024-01-05T10:41:00+00:00"})
    >>> p.to_line_protocol().split(" ")[0]
    'notification,channel=sms,outcome=sent,river=tuo'
    >>> p.fields["attempt"], p.fields["record_id"]
    (1, 'n-1#1')
    """
    notification_id = _text(notification, "notification_id")
    attempt = notification.get("attempt")
    record_id = _first_text(notification, "record_id") or f"{notification_id}#{attempt}"
    point = Point(NOTIFICATION).tag("channel", _label(notification.get("channel")))
    point.tag("outcome", _label(_first_text(notification, "outcome", "status")))
    river = _first_text(notification, "river")
    if river:
        point.tag("river", river)
    point.field("notification_id", notification_id)
    if isinstance(attempt, int) and not isinstance(attempt, bool):
        point.field("attempt", attempt)
    if isinstance(notification.get("target"), str):
        point.field("target", _redacted_target(notification["target"]))
    _extra_fields(point, notification, skip=_NOTIFICATION_KNOWN)
    at = _time(notification, "at")
    return point.time(time_ns(at, record_id))


_NOTIFICATION_KNOWN: Final = frozenset({"notification_id", "channel", "outcome", "status", "river", "attempt", "target",
                                        "at"})


def _first_text(record: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = record.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"field {name!r} must be a non-empty string, got {value!r}")
    return value


def _label(value: object) -> str:
    # A tag value must not be empty; "unknown" keeps the point instead of rejecting it.
    return str(value) if value not in (None, "") else "unknown"


def _time(record: Mapping[str, Any], name: str, *, fallback: str | None = None) -> datetime:
    value = record.get(name)
    if value is None and fallback is not None and record.get(fallback) is not None:
        name, value = fallback, record[fallback]
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"field {name!r} is not an ISO 8601 time: {value!r}") from exc
    else:
        raise ValueError(f"field {name!r} must be an ISO 8601 time, got {value!r}")
    if moment.tzinfo is None:
        raise ValueError(f"field {name!r} has no time zone: {value!r}")
    return moment


def _redacted_target(target: str) -> str:
    """
    >>> _redacted_target("dingtalk://token@secret/")
    'dingtalk://…'
    """
    scheme, sep, _ = target.partition("://")
    return f"{scheme}://…" if sep else target[:_MAX_TEXT]


def _extra_fields(point: Point, record: Mapping[str, Any], *, skip: frozenset[str]) -> None:
    """Scalar values beyond the known ones become fields, so new record fields show up."""
    for name, value in sorted(record.items()):
        if name in skip or value is None:
            continue
        if isinstance(value, bool):
            point.field(name, value)
        elif isinstance(value, int | float):
            # always float: a later 2.0 after a 2 would be a field type conflict (HTTP 400)
            point.field(name, float(value))
        elif isinstance(value, str):
            point.field(name, value[:_MAX_TEXT])


def record_lines(topic: str, value: bytes | None, topics: TopicSettings) -> list[str]:
    """Line protocol for one record of ``topic`` (see :func:`record_points`)."""
    if value is not None and topic == topics.readings:
        try:
            return reading_lines(decode(value, Reading).payload)
        except ValueError as exc:
            raise _invalid(topic, exc) from exc
    return [point.to_line_protocol() for point in record_points(topic, value, topics)]


def record_points(topic: str, value: bytes | None, topics: TopicSettings) -> list[Point]:
    """The points for one record of ``topic``; raises :class:`PayloadError` naming what is wrong.

    A tombstone (``value`` None on a compacted topic) deletes a key in Kafka and has no points.
    """
    if value is None:
        return []
    try:
        if topic == topics.readings:
            return reading_points(decode(value, Reading).payload)
        if topic == topics.detections:
            return detection_points(decode(value, Detection).payload)
        if topic in (topics.incidents, topics.notifications):
            payload = _payload(value)
            if topic == topics.incidents:
                return [incident_point(payload)]
            return [notification_point(payload)]
    except ValueError as exc:
        raise _invalid(topic, exc) from exc
    raise PayloadError("unknown_topic", f"the sink has no mapping for topic {topic!r}")


def _invalid(topic: str, exc: ValueError) -> PayloadError:
    """A record whose payload is not what its topic carries (pydantic errors name the field)."""
    reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
    return PayloadError("invalid_record", f"{topic}: {reason}")


def _payload(value: bytes) -> dict[str, Any]:
    # Incidents and notifications are read as plain envelopes so the sink does not import the
    # alerts package (dependency direction: alerts depends on the core, never the reverse).
    try:
        envelope = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JSON envelope: {exc}") from exc
    payload = envelope.get("payload") if isinstance(envelope, dict) else None
    if not isinstance(payload, dict):
        raise ValueError(f"envelope has no object 'payload' (got {type(payload).__name__})")
    return payload
