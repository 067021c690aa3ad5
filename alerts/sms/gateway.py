"""What the Aliyun and Tencent Cloud SMS plugins share: the URL, the template variables, the
length limit, the HTTP call and the verdict on a reply (sent / retry / do not retry).

URL (Apprise entry; the secret is URL-encoded in the password part)::

    aliyunsms://AccessKeyId:AccessKeySecret@dysmsapi.aliyuncs.com/13800000000/13900000000?sign=…&template=SMS_…
    tencentsms://SecretId:SecretKey@sms.tencentcloudapi.com/13800000000?sign=…&template=…&app=1400…

Options: ``sign`` (the approved sign name, 签名), ``template`` (the approved template code / id),
``maxlen`` (cut each variable to this many characters; 0: no cut), ``https=no`` (plain HTTP, for a
local test server only), and per provider ``region``, ``app`` (Tencent SmsSdkAppId), ``params``
(Tencent: the variable order, for ``{1}``, ``{2}``, …).

The message body is the JSON object of template variables the alert service writes for the
``sms_template`` channel (:func:`alerts.messages.template_fields`).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

from alerts.delivery import current_report

log = logging.getLogger(__name__)

TIMEOUT_S: Final = 10.0
#: The variables the alert service fills, in the order a positional template (Tencent) numbers them.
FIELDS: Final = ("level", "river", "station", "event", "outlook", "incident")


class GatewayUrlError(ValueError):
    """The Apprise URL of an SMS gateway lacks something; the message names the option."""


@dataclass(frozen=True)
class GatewayUrl:
    key_id: str
    secret: str = field(repr=False)
    endpoint: str  # host[:port]
    https: bool
    phones: tuple[str, ...]
    sign: str
    template: str
    maxlen: int
    options: Mapping[str, str]

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], default_maxlen: int) -> GatewayUrl:
        """Read the URL Apprise parsed (``meta`` of a custom notification)."""
        options = {str(k).lower(): str(v) for k, v in (meta.get("qsd") or {}).items()}
        key_id, secret = unquote(str(meta.get("user") or "")), unquote(str(meta.get("password") or ""))
        phones = tuple(p for p in str(meta.get("fullpath") or "").split("/") if p)
        missing = [name for name, value in (("the key id (user)", key_id), ("the secret (password)", secret),
                                            ("a phone number (path)", phones), ("?sign=", options.get("sign")),
                                            ("?template=", options.get("template"))) if not value]
        if missing:
            raise GatewayUrlError(f"{meta.get('schema')}:// URL needs {', '.join(missing)}")
        bad = [p for p in phones if not p.lstrip("+").isdigit()]
        if bad:
            raise GatewayUrlError(f"{meta.get('schema')}:// URL: {', '.join(bad)} is not a phone number")
        host = str(meta.get("host") or "")
        port = meta.get("port")
        try:
            maxlen = int(options.get("maxlen", default_maxlen))
        except ValueError as exc:
            raise GatewayUrlError(f"?maxlen= must be a whole number, got {options['maxlen']!r}") from exc
        return cls(key_id, secret, f"{host}:{port}" if port else host, options.get("https", "yes") != "no", phones,
                   options["sign"], options["template"], maxlen, options)

    @property
    def base(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.endpoint}"


def template_values(body: str, maxlen: int) -> dict[str, str]:
    """The template variables of ``body`` (the JSON object the alert service wrote), each cut to
    ``maxlen`` characters — a provider refuses a longer value outright, which would lose the alert.

    >>> template_values('{"level": "红色预警", "event": "氨氮超标12.3倍，镉超标2.1倍"}', 8)
    {'level': '红色预警', 'event': '氨氮超标12.…'}
    """
    try:
        values = json.loads(body)
    except ValueError as exc:
        raise GatewayUrlError("an SMS gateway target takes the alert service's template fields (JSON), "
                              "not free text; route it through the sms_template channel") from exc
    if not isinstance(values, dict):
        raise GatewayUrlError("the template fields must be a JSON object")
    return {str(k): _cut(str(v), maxlen) for k, v in values.items()}


def _cut(value: str, maxlen: int) -> str:
    if maxlen <= 0 or len(value) <= maxlen:
        return value
    return value[: maxlen - 1] + "…"


@dataclass(frozen=True)
class Reply:
    """What the gateway answered: sent, or refused with a code and whether retrying can help."""

    ok: bool
    retry: bool = True
    error: str = ""


def request(url: GatewayUrl, tail: str, *, body: bytes | None = None,
            headers: Mapping[str, str] | None = None) -> urllib.request.Request:
    """A request to the gateway (``tail`` after the host: path and query)."""
    method = "GET" if body is None else "POST"
    return urllib.request.Request(  # noqa: S310 - the base is http(s):// by construction
        f"{url.base}{tail}", data=body, method=method, headers=dict(headers or {})
    )


def call(request: urllib.request.Request) -> tuple[int, Any]:
    """One HTTP exchange: (status, decoded JSON or None). Network trouble is a status of 0."""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - http(s) only
            return response.status, _json(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _json(exc.read())
    except (urllib.error.URLError, OSError) as exc:
        log.warning("SMS gateway %s not reachable: %s", request.host, getattr(exc, "reason", exc))
        return 0, None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def finish(reply: Reply, provider: str, redacted: str) -> bool:
    """Tell the alert service (and the log) what happened; the bool is Apprise's answer."""
    if reply.ok:
        return True
    report = current_report()
    if report is not None:
        report.refused(f"{provider}: {reply.error}", retry=reply.retry)
    log.warning("%s refused the SMS (%s%s): %s", redacted, provider, "" if reply.retry else ", not retrying",
                reply.error)
    return False
