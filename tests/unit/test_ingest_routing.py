"""The bridge's pure step: payload → reading records or dead letters, split packets, never an escape."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.codecs import encode_json, frame_of
from ingest.hj212 import build_frame, split_frame
from ingest.routing import Message, Routed, Router
from riverguard.models import DeadLetter, Measurement, Reading, SourceFormat, decode
from riverguard.stations import load_registry

REGISTRY = load_registry()
STATION = REGISTRY.by_id["tuo-sanhuangmiao"]
TOPIC = "stations/tuo/tuo-sanhuangmiao/telemetry"
NOW = datetime(2024, 1, 5, 3, 0, tzinfo=UTC)


def router(**kwargs: object) -> Router[int]:
    return Router[int](REGISTRY, readings_topic="readings", dlq_topic="dlq", **kwargs)  # type: ignore[arg-type]


def reading(**values: float) -> Reading:
    return Reading(station_id=STATION.station_id, river="tuo", time=datetime(2024, 1, 5, 2, 30, tzinfo=UTC),
                   values={k: Measurement(value=v) for k, v in values.items()}, source_format=SourceFormat.HJ212)


def dead_letter(routed: Routed[int], index: int = 0) -> DeadLetter:
    return decode(routed.records[index].value or b"", DeadLetter).payload


def test_a_valid_payload_becomes_a_reading_keyed_by_station() -> None:
    [routed] = router().route(Message(TOPIC, encode_json(reading(pH=7.5), STATION), NOW, token=1))
    [record] = routed.records
    assert (record.topic, record.key, routed.tokens, routed.reasons) == ("readings", b"tuo-sanhuangmiao", (1,), ())
    out = decode(record.value or b"", Reading).payload
    assert out.values["pH"].value == 7.5
    assert out.source_format is SourceFormat.JSON


def test_a_rejected_payload_becomes_a_dead_letter_with_raw_bytes_topic_reason_and_time() -> None:
    raw = b'{"station_id": "tuo-sanhuangmiao", "time": "2024-01-05T10:30:00", "values": {"pH": 15}}'
    [routed] = router().route(Message(TOPIC, raw, NOW, token=9))
    assert (routed.records[0].topic, routed.records[0].key, routed.tokens) == ("dlq", b"tuo-sanhuangmiao", (9,))
    letter = dead_letter(routed)
    assert base64.b64decode(letter.raw_b64) == raw
    assert (letter.source, letter.reason_code, letter.received_at, letter.payload_format) == (
        TOPIC, "out_of_range", NOW, "json")
    assert "pH=15" in letter.reason


def test_a_reading_dated_hours_after_its_arrival_is_a_clock_fault_sent_to_the_dlq() -> None:
    # HJ 212 times are Beijing time: a data logger set to UTC+16 (or sending Beijing time as UTC)
    # dates its readings 8 h ahead. Minutes of drift are accepted.
    r = router()
    ahead = reading(pH=7.5).model_copy(update={"time": NOW + timedelta(hours=8)})
    [routed] = r.route(Message(TOPIC, build_frame(frame_of(ahead, STATION)), NOW, token=4))
    letter = dead_letter(routed)
    assert (routed.records[0].topic, routed.tokens, letter.reason_code) == ("dlq", (4,), "future_time")
    assert letter.reason.startswith("time=2024-01-05T19:00:00+08:00 is 8:00:00 after the message arrived "
                                    "(2024-01-05T03:00:00+00:00)")
    drifting = reading(pH=7.5).model_copy(update={"time": NOW + timedelta(minutes=50)})
    [routed] = r.route(Message(TOPIC, encode_json(drifting, STATION), NOW, token=5))
    assert (routed.records[0].topic, routed.reasons) == ("readings", ())


def test_split_packets_are_held_then_reassembled_and_all_their_messages_settled() -> None:
    parts = [build_frame(f) for f in split_frame(frame_of(reading(pH=7.5, NH3N=0.4, DO=8.0), STATION), 3)]
    r = router()
    assert r.route(Message(TOPIC, parts[2], NOW, token=3)) == []
    assert r.route(Message(TOPIC, parts[0], NOW, token=1)) == []
    [routed] = r.route(Message(TOPIC, parts[1], NOW, token=2))
    assert routed.tokens == (1, 2, 3)
    [record] = routed.records
    assert decode(record.value or b"", Reading).payload.values.keys() == {"pH", "NH3N", "DO"}


def test_incomplete_split_messages_expire_to_the_dlq_one_letter_per_packet() -> None:
    parts = [build_frame(f) for f in split_frame(frame_of(reading(pH=7.5, NH3N=0.4, DO=8.0), STATION), 3)]
    r = router(split_max_age=timedelta(minutes=1))
    r.route(Message(TOPIC, parts[0], NOW, token=1))
    r.route(Message(TOPIC, parts[1], NOW, token=2))
    assert r.expire(NOW + timedelta(seconds=59)) == []
    [routed] = r.expire(NOW + timedelta(minutes=1))
    assert routed.tokens == (1, 2)
    assert routed.reasons == ("split_incomplete", "split_incomplete")
    letters = [dead_letter(routed, i) for i in range(2)]
    assert [base64.b64decode(x.raw_b64) for x in letters] == parts[:2]
    assert all(x.source == TOPIC and "got packets [1, 2] of 3" in x.reason for x in letters)


def test_route_all_looks_for_expired_split_messages_once_a_second_even_when_nothing_arrives() -> None:
    first = build_frame(split_frame(frame_of(reading(pH=7.5, NH3N=0.4), STATION), 2)[0])
    r = router(split_max_age=timedelta(minutes=1))
    assert r.route_all([Message(TOPIC, first, NOW, token=1)], NOW) == []
    assert r.route_all([], NOW + timedelta(seconds=59.5)) == []  # looked: not old enough yet
    # Old enough now, but the last look was under a second ago.
    assert r.route_all([], NOW + timedelta(seconds=60.2)) == []
    [routed] = r.route_all([], NOW + timedelta(seconds=60.5))
    assert (routed.tokens, routed.reasons) == ((1,), ("split_incomplete",))


def test_open_split_messages_are_bounded() -> None:
    r = router(split_max_pending=2)
    frame = frame_of(reading(pH=7.5, NH3N=0.4), STATION)
    for number in range(3):
        first = split_frame(replace(frame, qn=f"2024010510300{number}000"), 2)[0]
        out = r.route(Message(TOPIC, build_frame(first), NOW + timedelta(seconds=number), token=number))
    assert [o.tokens for o in out] == [(0,)]  # the oldest gave way
    assert out[0].reasons == ("split_incomplete",)
    assert len(r.assembler) == 2


def test_a_failing_reassembled_message_dead_letters_every_packet() -> None:
    parts = [build_frame(f) for f in split_frame(frame_of(reading(pH=7.5, NH3N=0.4), STATION), 2)]
    r = router()
    r.route(Message("stations/tuo/tuo-hongyuan/telemetry", parts[0], NOW, token=1))
    [routed] = r.route(Message("stations/tuo/tuo-hongyuan/telemetry", parts[1], NOW, token=2))
    assert routed.reasons == ("topic_mismatch", "topic_mismatch")
    assert routed.tokens == (1, 2)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.builds(lambda b: b"##" + b, st.binary(max_size=300)))
def test_no_payload_escapes_as_an_exception_and_none_is_dropped(payload: bytes) -> None:
    routed = router().route(Message(TOPIC, payload, NOW, token=1))
    assert [r.tokens for r in routed] == [(1,)]
    if routed[0].reasons:
        assert dead_letter(routed[0]).reason_code != "internal"
