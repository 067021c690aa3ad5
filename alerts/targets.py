"""Notification targets from an Apprise YAML config file.

Each ``urls:`` entry becomes one :class:`Target` (its own outbox queue and rate limit), with
its Apprise tags and a channel (SMS / IM / e-mail / webhook) that picks the message format.
Apprise skips entries it cannot load with a log line; we check every entry on its own and fail
at start-up naming the entry instead, so a typo never silently removes a duty officer.

URLs carry tokens and passwords: only the redacted form (``plugin.url(privacy=True)``) is ever
logged, stored or put in an error message.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml
from apprise import AppriseConfig
from apprise.decorators import notify as apprise_notify

from alerts.delivery import current_report
from alerts.errors import AlertConfigError
from alerts.sms.gateway import GatewayUrlError
from alerts.sms.plugins import SCHEMES as SMS_GATEWAYS  # importing registers them with Apprise
from alerts.sms.plugins import check as check_gateway
from riverguard.incidents import Channel
from riverguard.yamlfile import read_yaml_mapping

log = logging.getLogger(__name__)

ALL_TAG: Final = "all"  # Apprise's own "every target" tag

_SMS_SCHEMES: Final = """aliyun twilio sns clicksend bulksms bulkvs burstsms msg91 d7sms sinch vonage nexmo plivo
    smseagle kavenegar clickatell seven infobip telnyx httpsms smsmanager smpp freemobile 46elks signl4"""
_SMS: Final = frozenset(_SMS_SCHEMES.split())
_IM_SCHEMES: Final = """dingtalk wecombot feishu lark slack msteams workflows discord tgram matrix matrixs rocket
    rockets mmost mmosts zulip qq onebot wxpusher serverchan pushplus kook line"""
_IM: Final = frozenset(_IM_SCHEMES.split())
_EMAIL: Final = frozenset({"mailto", "mailtos"})


@dataclass(frozen=True)
class Target:
    """One Apprise URL. ``service`` is the loaded Apprise plugin (None in pure tests)."""

    target_id: str
    tags: frozenset[str]
    channel: Channel
    redacted: str
    service: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Directory:
    """The targets, and which of them a set of tags selects."""

    targets: tuple[Target, ...]

    def select(self, tags: Iterable[str]) -> tuple[Target, ...]:
        wanted = set(tags)
        if ALL_TAG in wanted:
            return self.targets
        return tuple(t for t in self.targets if t.tags & wanted)

    def by_id(self) -> dict[str, Target]:
        return {t.target_id: t for t in self.targets}

    def check_tags(self, used: Mapping[str, str], source: str) -> None:
        """Fail when a tag the routing file uses selects no target."""
        known = set().union(*(t.tags for t in self.targets)) if self.targets else set()
        for tag, where in used.items():
            if tag != ALL_TAG and tag not in known:
                raise AlertConfigError(
                    f"{where} notifies tag {tag!r}, but no entry of {source} has that tag "
                    f"(tags there: {', '.join(sorted(known)) or 'none'})"
                )


def redact_url(url: str) -> str:
    """Scheme and host only, for URLs Apprise could not load (so no plugin can redact them).

    >>> redact_url("dingtalk://abcdef0123456789secret/")
    'dingtalk://***'
    >>> redact_url("mailto://ops:hunter2@mail.example.cn:587")
    'mailto://***@mail.example.cn:587/***'
    """
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return f"{parts.scheme}://***@{parts.netloc.rsplit('@', 1)[1]}/***"
    return f"{parts.scheme}://***"


def _channel(service: Any, tags: frozenset[str], overrides: Mapping[str, Channel]) -> Channel:
    schemes: set[str] = set()
    for attr in ("protocol", "secure_protocol"):
        value = getattr(service, attr, None)
        schemes.update([value] if isinstance(value, str) else [str(v) for v in value or ()])
    if schemes & SMS_GATEWAYS.keys():  # approved templates with variables: no free text, whatever the tag says
        return Channel.SMS_TEMPLATE
    for tag in sorted(tags):
        if tag in overrides:
            return overrides[tag]
    if schemes & _EMAIL:
        return Channel.EMAIL
    if schemes & _SMS:
        return Channel.SMS
    if schemes & _IM:
        return Channel.IM
    return Channel.WEBHOOK


def _entry_url(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and len(entry) == 1:
        return str(next(iter(entry)))
    return ""


def load_directory(path: Path, channel_overrides: Mapping[str, Channel] | None = None) -> Directory:
    """Load and check an Apprise YAML config (``version: 1`` + ``urls:``)."""
    overrides = channel_overrides or {}
    data = read_yaml_mapping(path, "Apprise config", error=AlertConfigError)
    if not isinstance(data.get("urls"), list) or not data["urls"]:
        raise AlertConfigError(f"Apprise config {path} must be YAML with a non-empty 'urls:' list")
    targets: list[Target] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(data["urls"]):
        url = _entry_url(entry)
        shown = redact_url(url) if url else repr(type(entry).__name__)
        config = AppriseConfig()
        text = yaml.safe_dump({"version": 1, "urls": [entry]}, allow_unicode=True)
        if not url or not config.add_config(text, format="yaml"):
            raise AlertConfigError(f"Apprise config {path}: urls[{index}] ({shown}) is not a URL entry")
        services = list(config.services())
        if len(services) != 1:
            raise AlertConfigError(
                f"Apprise config {path}: urls[{index}] ({shown}) is not a valid Apprise URL "
                "(unknown scheme, or a token/host Apprise rejects)"
            )
        service: Any = services[0]
        if urlsplit(url).scheme in SMS_GATEWAYS:
            try:
                check_gateway(url)
            except GatewayUrlError as exc:
                raise AlertConfigError(f"Apprise config {path}: urls[{index}] ({shown}): {exc}") from exc
        tags = frozenset(str(t) for t in service.tags)
        if not tags:
            raise AlertConfigError(
                f"Apprise config {path}: urls[{index}] ({service.url(privacy=True)}) has no tag; "
                "routes select targets by tag"
            )
        # Apprise's url_id() ignores recipients (two mailto:// entries collide), so hash the whole URL;
        # custom (@notify) plugins such as rgfile:// rebuild no URL at all, so for them hash the entry's.
        identity = str(service.url())
        if identity.endswith("://"):
            identity = url
        target_id = f"{urlsplit(url).scheme}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"
        if target_id in seen:
            raise AlertConfigError(
                f"Apprise config {path}: urls[{index}] ({service.url(privacy=True)}) duplicates urls[{seen[target_id]}]"
            )
        seen[target_id] = index
        # a file path is no secret, and without it two rgfile:// targets look the same in logs;
        # the other custom plugins (the SMS gateways) rebuild no URL, so redact the entry's
        scheme = urlsplit(url).scheme
        shown = url if scheme == "rgfile" else redact_url(url) if identity == url else str(service.url(privacy=True))
        targets.append(Target(target_id, tags, _channel(service, tags, overrides), shown, service))
    log.info("loaded %d notification targets from %s: %s", len(targets), path, ", ".join(t.redacted for t in targets))
    return Directory(tuple(targets))


@apprise_notify(on="rgfile", name="riverguard file target")  # type: ignore[no-untyped-call,untyped-decorator]
def _file_target(body: str, title: str, notify_type: str, meta: dict[str, Any], *_: Any, **__: Any) -> bool:
    """``rgfile:///abs/path/alerts.jsonl``: append each message as a JSON line (demo and console use)."""
    # Apprise's config loader folds the first path segment into "host"; put the absolute path back.
    target = Path("/" + (str(meta.get("host") or "") + str(meta.get("fullpath") or "")).lstrip("/"))
    report = current_report()  # the service's clock: the simulated time in the demo
    at = report.sent_at if report is not None else datetime.now(UTC)
    line = {"at": at.isoformat(), "title": title, "body": body, "type": str(notify_type)}
    with target.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    return True
