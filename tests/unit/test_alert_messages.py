"""Messages per channel and language: SMS fits two segments and carries what the duty officer needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import playbooks.networks
from alerts.catalogue import Language
from alerts.messages import SMS_LIMIT, MessageContext, render
from alerts.rivers import river_names, river_names_of
from playbooks import load_networks
from riverguard.incidents import (
    Channel,
    Incident,
    MaintenanceKey,
    NotificationReason,
    OutboxEntry,
    PollutionKey,
    Reason,
    Route,
    WarningLevel,
)
from riverguard.models import DetectionKind
from riverguard.settings import Settings

T0 = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)


def incident(**overrides: object) -> Incident:
    fields: dict[str, object] = {
        "incident_id": "RG-7B409F93",
        "key": PollutionKey(river="tuo", reach="tuo-r5", pollutant="NH3N"),
        "route": Route.POLLUTION,
        "river": "tuo",
        "reach": "tuo-r5",
        "pollutant": "NH3N",
        "kind": DetectionKind.LIMIT_EXCEEDANCE,
        "level": WarningLevel.RED,
        "level_reasons": (
            Reason(zh="超标 12.3 倍 ≥ 10 倍 → 红色", en="12.3× over the limit ≥ 10× → red"),
        ),
        "opened_at": T0,
        "updated_at": T0,
        "last_active_at": T0,
        "first_station": "tuo-jiaoxiancun",
        "stations": ("tuo-jiaoxiancun", "tuo-damozi"),
        "peak_value": 13.3,
        "peak_multiple": 12.3,
        "unit": "mg/L",
        "nearest_intake": "富顺县城取水口",
        "intake_arrival_at": T0 + timedelta(hours=3, minutes=30),
    }
    fields.update(overrides)
    return Incident.model_validate(fields)


def entry(channel: Channel, reason: NotificationReason = NotificationReason.OPENED, stage: int = 0) -> OutboxEntry:
    return OutboxEntry(notification_id=f"RG-7B409F93:{reason.value}:{stage}", target_id="t", channel=channel,
                       reason=reason, stage=stage, created_at=T0, next_attempt_at=T0)


CTX = MessageContext(
    ack_url="https://alerts.example.cn/ack/RG-7B409F93?k=0123456789abcdef",
    playbook_url="https://alerts.example.cn/incidents/RG-7B409F93/playbook?k=0123456789abcdef",
    station_names={"tuo-jiaoxiancun": "脚仙村", "tuo-damozi": "大磨子"},
)


def test_sms_in_chinese_has_every_fact_and_fits_two_segments() -> None:
    text = render(incident(), entry(Channel.SMS), CTX, T0).body
    assert len(text) <= SMS_LIMIT["zh"]
    for part in ("红色预警", "沱江", "大磨子", "氨氮", "超标12.3倍", "富顺县城取水口预计13:30到达", "RG-7B409F93"):
        assert part in text, part


def test_sms_drops_the_link_before_any_fact_when_too_long() -> None:
    long_ctx = MessageContext(ack_url="https://alerts.example.cn/" + "x" * 80, station_names=CTX.station_names)
    text = render(incident(), entry(Channel.SMS), long_ctx, T0).body
    assert len(text) <= SMS_LIMIT["zh"]
    assert "RG-7B409F93" in text
    assert "xxxx" not in text


def test_english_sms() -> None:
    ctx = MessageContext(language="en", ack_url=CTX.ack_url, station_names=CTX.station_names)
    text = render(incident(), entry(Channel.SMS), ctx, T0).body
    assert text.startswith("[RED alert]")
    assert "Tuo River" in text
    assert "12.3x over limit" in text
    assert "Ack: https://alerts.example.cn/ack/RG-7B409F93" in text
    assert len(text) <= SMS_LIMIT["en"]


def test_im_markdown_explains_the_level_and_links_to_ack_and_playbook() -> None:
    message = render(incident(), entry(Channel.IM), CTX, T0)
    assert message.body_format == "markdown"
    assert "级别依据" in message.body
    assert "超标 12.3 倍 ≥ 10 倍 → 红色" in message.body
    assert "脚仙村 → 大磨子" in message.body
    assert f"[确认接警]({CTX.ack_url})" in message.body
    assert f"({CTX.playbook_url})" in message.body


def test_email_is_html_with_the_map_attached() -> None:
    ctx = MessageContext(ack_url=CTX.ack_url, map_png=b"\x89PNG...", playbook_html="<section>方案</section>")
    message = render(incident(), entry(Channel.EMAIL), ctx, T0)
    assert message.body_format == "html"
    assert "<section>方案</section>" in message.body
    assert message.attachment_png == b"\x89PNG..."
    assert "RG-7B409F93" in message.title


@pytest.mark.parametrize(
    ("reason", "stage", "prefix"),
    [
        (NotificationReason.ESCALATION, 2, "【逐级上报2·红色预警】"),
        (NotificationReason.REMINDER, 3, "【第3次提醒·红色预警】"),
        (NotificationReason.RESOLVED, 0, "【已解除·红色预警】"),
    ],
)
def test_reason_shows_in_the_prefix(reason: NotificationReason, stage: int, prefix: str) -> None:
    text = render(incident(), entry(Channel.SMS, reason, stage), CTX, T0).body
    assert text.startswith(prefix)
    assert "RG-7B409F93" in text


def test_maintenance_messages_say_maintenance_not_pollution() -> None:
    key = MaintenanceKey(station="tuo-jiaoxiancun")
    fault = incident(key=key, route=Route.MAINTENANCE, kind=DetectionKind.SENSOR_FAULT, level=WarningLevel.BLUE,
                     peak_multiple=None, nearest_intake="", intake_arrival_at=None, stations=("tuo-jiaoxiancun",),
                     parameters=("NH3N", "TP"), kinds=(DetectionKind.SENSOR_FAULT, DetectionKind.MAINTENANCE))
    text = render(fault, entry(Channel.SMS), CTX, T0).body
    assert text.startswith("【运维】脚仙村站 仪器故障、仪器维护：氨氮、总磷。事件RG-7B409F93")
    assert "超标" not in text
    english = render(fault, entry(Channel.IM), MessageContext(language="en", station_names=CTX.station_names), T0)
    assert english.title == "[MAINTENANCE] Tuo River station 脚仙村: instrument fault, maintenance " \
        "(ammonia nitrogen, total phosphorus) RG-7B409F93"


def test_sms_says_arrived_when_the_arrival_is_past() -> None:
    arrived = incident(intake_arrival_at=T0 - timedelta(minutes=10))
    text = render(arrived, entry(Channel.SMS), CTX, T0).body
    assert "，污染团已到富顺县城取水口。" in text
    assert "小时" not in text
    assert len(text) <= SMS_LIMIT["zh"]
    english = render(arrived, entry(Channel.SMS), MessageContext(language="en"), T0).body
    assert "the plume is at intake 富顺县城取水口" in english
    facts = render(arrived, entry(Channel.IM), CTX, T0).body
    assert "污染团已到富顺县城取水口" in facts
    assert "0.0 小时" not in facts


def test_sms_leaves_out_an_arrival_it_does_not_know() -> None:
    text = render(incident(intake_arrival_at=None), entry(Channel.SMS), CTX, T0).body
    assert "小时" not in text
    assert "到达" not in text
    assert "RG-7B409F93" in text


def test_an_arrival_minutes_away_is_said_as_a_clock_time_never_zero_hours() -> None:
    text = render(incident(intake_arrival_at=T0 + timedelta(minutes=2)), entry(Channel.SMS), CTX, T0).body
    assert "富顺县城取水口预计10:02到达" in text
    assert "0.0" not in text
    facts = render(incident(intake_arrival_at=T0 + timedelta(minutes=2)), entry(Channel.IM), CTX, T0).body
    assert "距最早到达约0.1小时" in facts


def test_a_river_added_with_a_network_file_is_named_in_every_message() -> None:
    example = Path(playbooks.networks.__file__).parent / "example.yaml"
    networks = load_networks([example])
    fu = incident(key=PollutionKey(river="fu-example", reach="fu-r1", pollutant="NH3N"), river="fu-example")
    names: tuple[tuple[Language, str], ...] = (("zh", "涪江（示例）"), ("en", "Fu River (example)"))
    for language, name in names:
        ctx = MessageContext(language=language, rivers=river_names(networks))
        for channel in (Channel.SMS, Channel.IM, Channel.EMAIL):
            message = render(fu, entry(channel), ctx, T0)
            assert name in message.title + message.body, (language, channel)
            assert "fu-example" not in message.title + message.body
    # without its network the id is all a message can say
    assert "fu-example" in render(fu, entry(Channel.SMS), MessageContext(), T0).body


def test_the_service_names_the_rivers_of_its_network_dir(tmp_path: Path) -> None:
    (tmp_path / "fu.yaml").write_text((Path(playbooks.networks.__file__).parent / "example.yaml").read_text("utf-8"),
                                      encoding="utf-8")
    names = river_names_of(Settings(network_dir=tmp_path))
    assert (names["fu-example"]("zh"), names["tuo"]("zh")) == ("涪江（示例）", "沱江")
