"""Tencent Cloud SMS: the ``SendSms`` call (API 3.0, version 2021-01-11), signed with TC3-HMAC-SHA256.

Sources (read 2025):

- Signature v3 (TC3-HMAC-SHA256): canonical request (method, ``/``, empty query, canonical
  headers ``content-type`` and ``host``, signed headers, SHA-256 of the body), string to sign
  (algorithm, timestamp, ``date/service/tc3_request``, SHA-256 of the canonical request), key
  derived by HMAC-SHA256 chaining ``"TC3" + SecretKey`` → date → service → ``tc3_request`` —
  https://cloud.tencent.com/document/api/382/52072 (the worked example's signature
  ``72e494ea…96525168`` is reproduced by the tests).
- SendSms: ``PhoneNumberSet`` (E.164, up to 200 per call), ``SmsSdkAppId``, ``SignName``,
  ``TemplateId``, ``TemplateParamSet`` (the template's ``{1}``, ``{2}``, … in order); the reply
  has one ``SendStatus`` per number — https://cloud.tencent.com/document/api/382/55981
- Error codes: https://cloud.tencent.com/document/api/382/59177 (SMS) and
  https://cloud.tencent.com/document/api/382/52075 (common). Faults of the request or the set-up
  (signature, key, app id, sign name, template, parameter format, a number) cannot succeed on a
  retry; frequency limits, balance and internal errors can.
- Variable length: personal-certified accounts may send at most 12 characters per variable,
  organisations have no per-variable limit (https://www.tencentcloud.com/zh/document/product/382/40659,
  正文模板审核标准, 变量规范; error 1036 of the SMS error codes); a bureau's account is an
  organisation's, so nothing is cut unless ``?maxlen=12``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from alerts.sms.gateway import FIELDS, GatewayUrl, Reply, call, request

DEFAULT_MAXLEN: Final = 0
MAX_NUMBERS: Final = 200
SERVICE: Final = "sms"
VERSION: Final = "2021-01-11"
CONTENT_TYPE: Final = "application/json; charset=utf-8"
_DO_NOT_RETRY_PREFIXES: Final = ("AuthFailure.", "InvalidParameter", "MissingParameter", "UnauthorizedOperation.",
                                 "UnsupportedOperation", "InvalidAction", "NoSuchVersion")
_DO_NOT_RETRY: Final = frozenset({
    "FailedOperation.SignatureIncorrectOrUnapproved", "FailedOperation.TemplateIncorrectOrUnapproved",
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate", "FailedOperation.PhoneNumberInBlacklist",
    "FailedOperation.ContainSensitiveWord", "FailedOperation.FailResolvePacket", "FailedOperation.JsonParseFail",
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
})
_RETRY: Final = frozenset({"AuthFailure.SignatureExpire"})  # a clock that drifted may be put right


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def authorization(secret_id: str, secret_key: str, *, host: str, payload: str, timestamp: int,
                  service: str = SERVICE) -> str:
    """The ``Authorization`` header of a POST with a JSON ``payload`` to ``host`` at ``timestamp``."""
    canonical_request = "\n".join(
        ["POST", "/", "", f"content-type:{CONTENT_TYPE}\nhost:{host}\n", "content-type;host", _sha256(payload)]
    )
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope, _sha256(canonical_request)])
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, "
            f"Signature={signature}")


def e164(phone: str) -> str:
    """``13800000000`` → ``+8613800000000``; numbers with a ``+`` stay as they are."""
    return phone if phone.startswith("+") else f"+86{phone}"


def payload(url: GatewayUrl, phones: Sequence[str], values: Mapping[str, str]) -> str:
    order = [p.strip() for p in url.options.get("params", ",".join(FIELDS)).split(",") if p.strip()]
    return json.dumps({
        "PhoneNumberSet": [e164(p) for p in phones],
        "SmsSdkAppId": url.options.get("app", ""),
        "SignName": url.sign,
        "TemplateId": url.template,
        "TemplateParamSet": [values.get(name, "-") for name in order],
        "SessionContext": values.get("incident", ""),
    }, ensure_ascii=False, separators=(",", ":"))


def _retryable(code: str) -> bool:
    if code in _RETRY:
        return True
    return code not in _DO_NOT_RETRY and not code.startswith(_DO_NOT_RETRY_PREFIXES)


def classify(status: int, reply: Any) -> Reply:
    """Sent when every number was accepted. A number refused for good (say, a wrong one) does not
    fail a message the others got; one refused for now fails it, to be retried."""
    response = reply.get("Response") if isinstance(reply, dict) else None
    if not isinstance(response, dict):
        return Reply(ok=False, retry=True, error=f"HTTP {status or 'unreachable'}")
    error = response.get("Error")
    if isinstance(error, dict):
        code = str(error.get("Code", ""))
        return Reply(ok=False, retry=_retryable(code), error=f"{code}: {error.get('Message', '')}")
    statuses = [s for s in response.get("SendStatusSet") or () if isinstance(s, dict)]
    refused = [(str(s.get("PhoneNumber", "")), str(s.get("Code", ""))) for s in statuses if s.get("Code") != "Ok"]
    if not statuses:
        return Reply(ok=False, retry=True, error="no send status in the reply")
    if not refused:
        return Reply(ok=True)
    described = "; ".join(f"{phone[:-4]}****: {code}" for phone, code in refused)  # numbers are personal data
    if any(_retryable(code) for _, code in refused):
        return Reply(ok=False, retry=True, error=described)
    if len(refused) < len(statuses):
        return Reply(ok=True, error=described)
    return Reply(ok=False, retry=False, error=described)


def send(url: GatewayUrl, values: Mapping[str, str], *, now: datetime | None = None) -> Reply:
    """Send to every number (in calls of up to 200); the first refusal is the answer."""
    if not url.options.get("app"):
        return Reply(ok=False, retry=False, error="tencentsms:// URL needs ?app= (the SmsSdkAppId)")
    accepted_all = Reply(ok=True)
    for start in range(0, len(url.phones), MAX_NUMBERS):
        body = payload(url, url.phones[start:start + MAX_NUMBERS], values)
        timestamp = int((now or datetime.now(UTC)).timestamp())
        reply = classify(*call(request(url, "/", body=body.encode(), headers={
            "Authorization": authorization(url.key_id, url.secret, host=url.endpoint, payload=body,
                                           timestamp=timestamp),
            "Content-Type": CONTENT_TYPE, "Host": url.endpoint, "X-TC-Action": "SendSms",
            "X-TC-Timestamp": str(timestamp), "X-TC-Version": VERSION,
            "X-TC-Region": url.options.get("region", "ap-guangzhou"),
        })))
        if not reply.ok:
            return reply
        if reply.error:
            accepted_all = reply
    return accepted_all
