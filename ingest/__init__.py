"""Ingest: MQTT → Kafka bridge, payload codecs (JSON, HJ 212-2017) and the station simulator."""

from ingest.assembler import Assembled, Expired, SplitAssembler
from ingest.codecs import Codec, Hj212Codec, JsonCodec, TopicPattern, encode_hj212, encode_json
from ingest.hj212 import Frame, build_frame, crc16, iter_frames, parse_frame, split_frame
from ingest.routing import Decoded, Message, Routed, Router, sniff_format
from ingest.simulator import EventKind, InjectedEvent, Simulator, Spill

__all__ = [
    "Assembled",
    "Codec",
    "Decoded",
    "EventKind",
    "Expired",
    "Frame",
    "Hj212Codec",
    "InjectedEvent",
    "JsonCodec",
    "Message",
    "Routed",
    "Router",
    "Simulator",
    "Spill",
    "SplitAssembler",
    "TopicPattern",
    "build_frame",
    "crc16",
    "encode_hj212",
    "encode_json",
    "iter_frames",
    "parse_frame",
    "sniff_format",
    "split_frame",
]
