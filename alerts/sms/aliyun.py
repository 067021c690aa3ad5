"""Aliyun (Alibaba Cloud) SMS: the ``SendSms`` RPC call, signed with the POP signature (v1.0).

Sources (read 2025):

- Signature: HMAC-SHA1 over ``GET&%2F&`` + percent-encoded canonicalized query, key = secret + ``&``,
  Base64 — https://help.aliyun.com/document_detail/101343.htm (with a worked example whose
  signature ``zJDF+Lrzhj/ThnlvIToysFRq6t4=`` the tests reproduce) and
  https://www.alibabacloud.com/help/zh/sms/signature-method. Percent-encoding is RFC 3986:
  unreserved ``A–Z a–z 0–9 - _ . ~`` kept, space as ``%20``.
- SendSms (version 2017-05-25): ``PhoneNumbers`` comma-separated, up to 1,000 per call;
  ``SignName``, ``TemplateCode``, ``TemplateParam`` (a JSON object of the template's variables) —
  https://help.aliyun.com/en/sms/developer-reference/api-dysmsapi-2017-05-25-sendsms
- Error codes — https://help.aliyun.com/document_detail/101346.html. Codes that name a fault in the
  request or the account set-up (signature, key, sign name, template, parameters, numbers) cannot
  succeed on a retry; flow control, quotas and platform errors can, and an alarm keeps trying.
- Template variables are limited by the property registered for each
  (https://help.aliyun.com/document_detail/463270.htm, 变量规范). The limits of that table were
  not at hand when this was written, so variables are cut at a cautious 20 characters (our
  fields fit) unless ``?maxlen=`` says what the registered properties allow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from alerts.sms.gateway import GatewayUrl, Reply, call, request

DEFAULT_MAXLEN: Final = 20
MAX_NUMBERS: Final = 1000
_DO_NOT_RETRY: Final = frozenset({
    "SignatureDoesNotMatch", "IncompleteSignature", "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive",
    "Forbidden.RAM", "isp.RAM_PERMISSION_DENY", "isv.SMS_SIGNATURE_SCENE_ILLEGAL", "isv.EXTEND_CODE_ERROR",
    "isv.SIGN_STATE_ILLEGAL", "isv.DOMESTIC_NUMBER_NOT_SUPPORTED", "isv.DENY_IP_RANGE", "isv.SMS_CONTENT_ILLEGAL",
    "isv.SMS_SIGN_ILLEGAL", "isv.PRODUCT_UN_SUBSCRIPT", "isv.PRODUCT_UNSUBSCRIBE", "isv.ACCOUNT_NOT_EXISTS",
    "isv.ACCOUNT_ABNORMAL", "isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL", "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.MOBILE_COUNT_OVER_LIMIT", "isv.TEMPLATE_MISSING_PARAMETERS", "isv.INVALID_PARAMETERS",
    "isv.INVALID_JSON_PARAM", "isv.PARAM_LENGTH_LIMIT", "isv.PARAM_NOT_SUPPORT_URL", "isv.BLACK_KEY_CONTROL_LIMIT",
    "isv.TEMPLATE_PARAMS_ILLEGAL", "isv.SMS_TEST_SIGN_TEMPLATE_LIMIT", "isv.SMS_SIGN_EMOJI_ILLEGAL",
})


def percent(value: str) -> str:
    """RFC 3986 percent-encoding, as the POP signature wants it.

    >>> percent("a b*c~d/é")
    'a%20b%2Ac~d%2F%C3%A9'
    """
    return quote(value, safe="-_.~")


def signature(params: Mapping[str, str], secret: str, method: str = "GET") -> str:
    """The POP signature of a request with ``params`` (all of them but ``Signature``)."""
    canonical = "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method}&{percent('/')}&{percent(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def request_params(url: GatewayUrl, phones: tuple[str, ...], values: Mapping[str, str], *, now: datetime,
                   nonce: str, out_id: str) -> dict[str, str]:
    """The signed query of one SendSms call."""
    params = {
        "AccessKeyId": url.key_id,
        "Action": "SendSms",
        "Format": "JSON",
        "OutId": out_id,
        "PhoneNumbers": ",".join(phones),
        "RegionId": url.options.get("region", "cn-hangzhou"),
        "SignName": url.sign,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce,
        "SignatureVersion": "1.0",
        "TemplateCode": url.template,
        "TemplateParam": json.dumps(dict(values), ensure_ascii=False, separators=(",", ":")),
        "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Version": "2017-05-25",
    }
    return {**params, "Signature": signature(params, url.secret)}


def classify(status: int, payload: Any) -> Reply:
    """Sent, or refused: with the code, and whether a retry can help."""
    code = payload.get("Code") if isinstance(payload, dict) else None
    if status == 200 and code == "OK":
        return Reply(ok=True)
    message = payload.get("Message", "") if isinstance(payload, dict) else ""
    if code is None:
        return Reply(ok=False, retry=True, error=f"HTTP {status or 'unreachable'}")
    return Reply(ok=False, retry=code not in _DO_NOT_RETRY, error=f"{code}: {message}")


def send(url: GatewayUrl, values: Mapping[str, str], out_id: str) -> Reply:
    """Send to every number (in calls of up to 1,000); the first refusal is the answer."""
    for start in range(0, len(url.phones), MAX_NUMBERS):
        params = request_params(url, url.phones[start:start + MAX_NUMBERS], values, now=datetime.now(UTC),
                                nonce=uuid.uuid4().hex, out_id=out_id)
        query = "&".join(f"{percent(k)}={percent(v)}" for k, v in params.items())
        reply = classify(*call(request(url, f"/?{query}")))
        if not reply.ok:
            return reply
    return Reply(ok=True)
