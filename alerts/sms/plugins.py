"""``aliyunsms://`` and ``tencentsms://``: Apprise custom notifications (``apprise.decorators.notify``)
for the SMS gateways a Chinese bureau's duty SMS goes through. Importing this module registers them.

A refusal that retrying cannot cure (wrong signature, unapproved template, bad number) is reported
to the alert service through :mod:`alerts.delivery`, so the outbox gives up at once; the log and
the report carry the provider's code and message, never the secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from apprise.decorators import notify as apprise_notify
from apprise.decorators.base import CustomNotifyPlugin

from alerts.sms import aliyun, tencent
from alerts.sms.gateway import GatewayUrl, GatewayUrlError, Reply, finish, template_values

log = logging.getLogger(__name__)


SCHEMES: Final = {"aliyunsms": aliyun.DEFAULT_MAXLEN, "tencentsms": tencent.DEFAULT_MAXLEN}


def check(url: str) -> None:
    """Raise :class:`GatewayUrlError` naming what an ``aliyunsms://`` or ``tencentsms://`` URL lacks
    (the alert service checks every entry at start-up, not at the first alarm)."""
    meta = CustomNotifyPlugin.parse_url(url) or {}
    gateway = GatewayUrl.from_meta(meta, SCHEMES[str(meta.get("schema"))])
    if meta.get("schema") == "tencentsms" and not gateway.options.get("app"):
        raise GatewayUrlError("tencentsms:// URL needs ?app= (the SmsSdkAppId)")


def _send(provider: str, meta: dict[str, Any], body: str, send: Callable[[GatewayUrl, dict[str, str]], Reply]) -> bool:
    redacted = f"{meta.get('schema')}://***@{meta.get('host')}/***"
    try:
        url = GatewayUrl.from_meta(meta, SCHEMES[str(meta.get("schema"))])
        reply = send(url, template_values(body, url.maxlen))
    except GatewayUrlError as exc:
        reply = Reply(ok=False, retry=False, error=str(exc))
    if reply.ok and reply.error:  # delivered to some numbers, refused for good to others
        log.warning("%s: some numbers refused for good: %s", redacted, reply.error)
    return finish(reply, provider, redacted)


@apprise_notify(on="aliyunsms", name="Aliyun SMS (riverguard)")  # type: ignore[no-untyped-call,untyped-decorator]
def send_aliyun(body: str, *_: Any, meta: dict[str, Any], **__: Any) -> bool:
    # OutId comes back in Aliyun's delivery receipts: the incident id ties a receipt to the alert
    return _send("aliyun", meta, body, lambda url, values: aliyun.send(url, values, values.get("incident", "")[:64]))


@apprise_notify(on="tencentsms", name="Tencent Cloud SMS (riverguard)")  # type: ignore[no-untyped-call,untyped-decorator]
def send_tencent(body: str, *_: Any, meta: dict[str, Any], **__: Any) -> bool:
    return _send("tencent", meta, body, tencent.send)
