"""The Aliyun and Tencent Cloud SMS plugins against local gateways that check the signature.

Each fake gateway verifies requests with its own implementation of the provider's algorithm,
written here from the providers' documents and held to their worked examples; a request whose
signature does not match is refused the way the provider refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from alerts.book import Context, IncidentBook
from alerts.delivery import reporting
from alerts.errors import AlertConfigError
from alerts.messages import MessageContext, render
from alerts.routing import RoutingConfig
from alerts.sms import aliyun, tencent
from alerts.targets import Directory, Target, load_directory
from riverguard.incidents import Channel
from riverguard.models import Detection, DetectionKind, Finding

ALIYUN_SECRET = "testSecret/&+="  # characters the URL must carry encoded
TENCENT_SECRET = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"


# -- the gateways' own view of the algorithms --------------------------------------------------


def pop_sign(query: dict[str, str], secret: str) -> str:
    """Aliyun POP v1: sorted ``k=v`` pairs, each percent-encoded (RFC 3986), joined by ``&``, the whole
    encoded again after ``GET&%2F&``; HMAC-SHA1 keyed ``secret&``; Base64 (help.aliyun.com/document_detail/101343)."""
    enc = {k: quote(v, safe="~") for k, v in query.items()}
    canonical = "&".join(f"{quote(k, safe='~')}={enc[k]}" for k in sorted(enc))
    message = "GET&%2F&" + quote(canonical, safe="~")
    return base64.b64encode(hmac.new((secret + "&").encode(), message.encode(), "sha1").digest()).decode()


def tc3_sign(secret_key: str, headers: dict[str, str], body: bytes, signed: list[str], timestamp: int,
             service: str = "sms") -> str:
    """Tencent TC3-HMAC-SHA256 from the request as received (cloud.tencent.com/document/api/382/52072)."""
    lines = "".join(f"{h}:{headers[h].strip().lower() if h == 'content-type' else headers[h].strip()}\n"
                    for h in signed)
    request = f"POST\n/\n\n{lines}\n{';'.join(signed)}\n{hashlib.sha256(body).hexdigest()}"
    day = datetime.fromtimestamp(timestamp, tz=UTC).date().isoformat()
    key = ("TC3" + secret_key).encode()
    for part in (day, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    scope = f"{day}/{service}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_the_gateways_algorithms_reproduce_the_documented_examples() -> None:
    example = {"SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
               "AccessKeyId": "testId", "SignatureVersion": "1.0", "Timestamp": "2017-07-12T02:42:19Z",
               "Format": "XML", "Action": "SendSms", "Version": "2017-05-25", "RegionId": "cn-hangzhou",
               "PhoneNumbers": "15300000001", "SignName": "阿里云短信测试专用",
               "TemplateParam": '{"customer":"test"}', "TemplateCode": "SMS_71390007", "OutId": "123"}
    assert pop_sign(example, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert aliyun.signature(example, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    body = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    headers = {"content-type": "application/json; charset=utf-8", "host": "cvm.tencentcloudapi.com"}
    expected = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    assert tc3_sign(TENCENT_SECRET, headers, body, ["content-type", "host"], 1551113065, "cvm") == expected
    # the plugin's implementation, for the service "cvm" of the example
    header = tencent.authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", TENCENT_SECRET,
                                   host="cvm.tencentcloudapi.com", payload=body.decode(), timestamp=1551113065,
                                   service="cvm")
    assert header.endswith(f"Signature={expected}")


# -- fake gateways ---------------------------------------------------------------------------------


@dataclass
class Gateway:
    """A local HTTP server standing in for a provider; ``answer`` decides the reply to a valid request."""

    verify: Callable[[BaseHTTPRequestHandler, bytes], str | None]  # None: the signature is right
    refuse: Callable[[str], tuple[int, dict[str, Any]]]
    answer: Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, Any]]]
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0


@pytest.fixture
def serve() -> Iterator[Callable[[Gateway], Gateway]]:
    servers: list[ThreadingHTTPServer] = []

    def start(gateway: Gateway) -> Gateway:
        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gateway.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                problem = gateway.verify(self, body)
                status, reply = gateway.refuse(problem) if problem else gateway.answer(self, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle  # noqa: N815 - http.server's names

            def log_message(self, *_: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        gateway.port = server.server_address[1]
        return gateway

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def aliyun_verify(handler: BaseHTTPRequestHandler, _: bytes) -> str | None:
    query = dict(parse_qsl(urlsplit(handler.path).query, keep_blank_values=True))
    given = query.pop("Signature", "")
    if hmac.compare_digest(given, pop_sign(query, ALIYUN_SECRET)):
        return None
    return "SignatureDoesNotMatch"


def aliyun_refuse(code: str) -> tuple[int, dict[str, Any]]:
    return 400, {"Code": code, "Message": "Specified signature is not matched with our calculation.",
                 "RequestId": "r-1"}


def aliyun_ok(_: BaseHTTPRequestHandler, __: bytes) -> tuple[int, dict[str, Any]]:
    return 200, {"Code": "OK", "Message": "OK", "RequestId": "r-2", "BizId": "b-1"}


def tencent_verify(handler: BaseHTTPRequestHandler, body: bytes) -> str | None:
    headers = {k.lower(): v for k, v in handler.headers.items()}
    auth = headers.get("authorization", "")
    fields = dict(part.strip().split("=", 1) for part in auth.removeprefix("TC3-HMAC-SHA256 ").split(","))
    signed = fields.get("SignedHeaders", "").split(";")
    expected = tc3_sign(TENCENT_SECRET, headers, body, signed, int(headers["x-tc-timestamp"]))
    return None if hmac.compare_digest(fields.get("Signature", ""), expected) else "AuthFailure.SignatureFailure"


def tencent_refuse(code: str) -> tuple[int, dict[str, Any]]:
    return 200, {"Response": {"Error": {"Code": code, "Message": "The provided credentials could not be validated."},
                              "RequestId": "r-3"}}


def tencent_codes(*codes: str) -> Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, Any]]]:
    def answer(_: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, Any]]:
        phones = json.loads(body)["PhoneNumberSet"]
        statuses = [{"PhoneNumber": p, "Code": c, "Message": c, "SerialNo": f"s{n}", "Fee": 1}
                    for n, (p, c) in enumerate(zip(phones, codes, strict=True))]
        return 200, {"Response": {"SendStatusSet": statuses, "RequestId": "r-4"}}

    return answer


# -- the plugins through Apprise, as the alert service loads and calls them -------------------------


def target(tmp_path: Path, url: str) -> Target:
    config = tmp_path / "apprise.yaml"
    config.write_text(f"version: 1\nurls:\n  - \"{url}\":\n      - tag: duty\n", encoding="utf-8")
    (loaded,) = load_directory(config).targets
    return loaded


def alert_body(target_: Target) -> str:
    """The alert service's message for a gateway target: the template variables of a red NH3N alert."""
    book = IncidentBook(RoutingConfig.model_validate({"routes": [{"name": "d", "notify": ["duty"]}]}),
                        Directory((target_,)))
    at = datetime(2024, 7, 3, 0, 40, tzinfo=UTC)
    finding = Finding(parameter="NH3N", value=13.3, limit=1.0, multiple=12.3, unit="mg/L")
    book.observe(Detection(detection_id="d", event_id="e", station_id="tuo-hongyuan", river="tuo", time=at,
                           kind=DetectionKind.LIMIT_EXCEEDANCE, findings=(finding,), detector="t"), Context(), at)
    ((incident, entry),) = book.due(at)
    assert entry.channel is Channel.SMS_TEMPLATE
    return render(incident, entry, MessageContext(station_names={"tuo-hongyuan": "宏缘"}), at).body


def send(target_: Target, body: str) -> tuple[bool, bool, str]:
    with reporting(datetime.now(UTC)) as report:
        ok = bool(target_.service.notify(body=body, title=""))
    return ok, report.retry, report.error


SECRET_IN_URL = quote(ALIYUN_SECRET, safe="")


def test_aliyun_sends_the_template_to_every_number_with_a_signature_the_gateway_accepts(
    tmp_path: Path, serve: Callable[[Gateway], Gateway], caplog: pytest.LogCaptureFixture
) -> None:
    gateway = serve(Gateway(aliyun_verify, aliyun_refuse, aliyun_ok))
    url = (f"aliyunsms://LTAI5tTEST:{SECRET_IN_URL}@127.0.0.1:{gateway.port}/13800000000/13900000000"
           "?sign=四川省生态环境厅&template=SMS_465000001&https=no")
    sms = target(tmp_path, url)
    assert sms.channel is Channel.SMS_TEMPLATE
    assert sms.redacted == f"aliyunsms://***@127.0.0.1:{gateway.port}/***"
    caplog.set_level(logging.DEBUG)
    assert send(sms, alert_body(sms)) == (True, True, "")
    ((path, _, _),) = gateway.requests
    query = dict(parse_qsl(urlsplit(path).query))
    assert (query["PhoneNumbers"], query["SignName"], query["TemplateCode"]) == (
        "13800000000,13900000000", "四川省生态环境厅", "SMS_465000001")
    fields = json.loads(query["TemplateParam"])
    assert fields["level"] == "红色预警"
    assert fields["event"] == "氨氮超标12.3倍"
    assert fields["station"] == "宏缘"
    assert query["OutId"] == fields["incident"]
    assert all(len(v) <= aliyun.DEFAULT_MAXLEN for v in fields.values())
    assert ALIYUN_SECRET not in caplog.text
    assert SECRET_IN_URL not in caplog.text


def test_aliyun_wrong_secret_is_refused_and_not_retried(tmp_path: Path, serve: Callable[[Gateway], Gateway],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    gateway = serve(Gateway(aliyun_verify, aliyun_refuse, aliyun_ok))
    sms = target(tmp_path, f"aliyunsms://LTAI5tTEST:wrong-secret@127.0.0.1:{gateway.port}/13800000000"
                           "?sign=河长办&template=SMS_1&https=no")
    caplog.set_level(logging.DEBUG)
    ok, retry, error = send(sms, alert_body(sms))
    assert (ok, retry) == (False, False)
    assert error.startswith("aliyun: SignatureDoesNotMatch")
    assert "wrong-secret" not in caplog.text + error


@pytest.mark.parametrize(("code", "retry"), [("isv.BUSINESS_LIMIT_CONTROL", True), ("isp.SYSTEM_ERROR", True),
                                             ("isv.SMS_TEMPLATE_ILLEGAL", False), ("isv.MOBILE_NUMBER_ILLEGAL", False)])
def test_aliyun_error_codes_say_whether_to_retry(tmp_path: Path, serve: Callable[[Gateway], Gateway], code: str,
                                                 retry: bool) -> None:
    gateway = serve(Gateway(aliyun_verify, aliyun_refuse, lambda *_: (400, {"Code": code, "Message": code})))
    sms = target(tmp_path, f"aliyunsms://LTAI5tTEST:{SECRET_IN_URL}@127.0.0.1:{gateway.port}/13800000000"
                           "?sign=河长办&template=SMS_1&https=no")
    assert send(sms, alert_body(sms))[:2] == (False, retry)


def tencent_url(port: int, secret: str = TENCENT_SECRET, numbers: str = "13800000000/+8613900000000") -> str:
    return (f"tencentsms://AKIDTEST:{secret}@127.0.0.1:{port}/{numbers}"
            "?sign=四川省生态环境厅&template=2140001&app=1400006666&https=no")


def test_tencent_sends_the_template_in_order_with_a_signature_the_gateway_accepts(
    tmp_path: Path, serve: Callable[[Gateway], Gateway], caplog: pytest.LogCaptureFixture
) -> None:
    gateway = serve(Gateway(tencent_verify, tencent_refuse, tencent_codes("Ok", "Ok")))
    sms = target(tmp_path, tencent_url(gateway.port))
    assert sms.channel is Channel.SMS_TEMPLATE
    caplog.set_level(logging.DEBUG)
    body = alert_body(sms)
    assert send(sms, body) == (True, True, "")
    ((_, headers, sent),) = gateway.requests
    assert (headers["x-tc-action"], headers["x-tc-version"]) == ("SendSms", "2021-01-11")
    request = json.loads(sent)
    assert request["PhoneNumberSet"] == ["+8613800000000", "+8613900000000"]
    assert (request["SmsSdkAppId"], request["TemplateId"], request["SignName"]) == (
        "1400006666", "2140001", "四川省生态环境厅")
    assert request["TemplateParamSet"] == [json.loads(body)[k] for k in
                                           ("level", "river", "station", "event", "outlook", "incident")]
    assert TENCENT_SECRET not in caplog.text


def test_tencent_wrong_key_is_refused_and_not_retried(tmp_path: Path, serve: Callable[[Gateway], Gateway]) -> None:
    gateway = serve(Gateway(tencent_verify, tencent_refuse, tencent_codes("Ok")))
    sms = target(tmp_path, tencent_url(gateway.port, secret="not-the-key", numbers="13800000000"))
    ok, retry, error = send(sms, alert_body(sms))
    assert (ok, retry) == (False, False)
    assert error.startswith("tencent: AuthFailure.SignatureFailure")


@pytest.mark.parametrize(
    ("codes", "ok", "retry"),
    [
        (("Ok", "InvalidParameterValue.IncorrectPhoneNumber"), True, True),  # the others got it
        (("Ok", "LimitExceeded.PhoneNumberDailyLimit"), False, True),
        (("FailedOperation.TemplateIncorrectOrUnapproved",) * 2, False, False),
        (("InternalError.Timeout", "Ok"), False, True),
    ],
)
def test_tencent_per_number_codes_say_whether_to_retry(tmp_path: Path, serve: Callable[[Gateway], Gateway],
                                                       codes: tuple[str, ...], ok: bool, retry: bool) -> None:
    gateway = serve(Gateway(tencent_verify, tencent_refuse, tencent_codes(*codes)))
    sms = target(tmp_path, tencent_url(gateway.port))
    assert send(sms, alert_body(sms))[:2] == (ok, retry)


def test_an_unreachable_gateway_is_retried(tmp_path: Path) -> None:
    sms = target(tmp_path, f"aliyunsms://LTAI5tTEST:{SECRET_IN_URL}@127.0.0.1:9/13800000000"
                           "?sign=河长办&template=SMS_1&https=no")
    assert send(sms, alert_body(sms))[:2] == (False, True)


def test_a_long_variable_is_cut_to_the_limit(tmp_path: Path, serve: Callable[[Gateway], Gateway]) -> None:
    gateway = serve(Gateway(aliyun_verify, aliyun_refuse, aliyun_ok))
    sms = target(tmp_path, f"aliyunsms://LTAI5tTEST:{SECRET_IN_URL}@127.0.0.1:{gateway.port}/13800000000"
                           "?sign=河长办&template=SMS_1&https=no&maxlen=6")
    assert send(sms, json.dumps({"event": "氨氮超标12.3倍，总磷超标2.1倍", "level": "红色预警"}))[0]
    fields = json.loads(dict(parse_qsl(urlsplit(gateway.requests[0][0]).query))["TemplateParam"])
    assert fields == {"event": "氨氮超标1…", "level": "红色预警"}


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("aliyunsms://LTAI5tTEST:s3cret@dysmsapi.aliyuncs.com/13800000000?sign=河长办", "?template="),
        ("aliyunsms://LTAI5tTEST:s3cret@dysmsapi.aliyuncs.com/?sign=河长办&template=SMS_1", "a phone number"),
        ("aliyunsms://LTAI5tTEST:s3cret@dysmsapi.aliyuncs.com/1380000abcd?sign=a&template=SMS_1", "1380000abcd"),
        ("tencentsms://AKID:s3cret@sms.tencentcloudapi.com/13800000000?sign=a&template=1", "?app="),
    ],
)
def test_a_bad_gateway_url_stops_the_start_naming_what_is_missing(tmp_path: Path, url: str, named: str) -> None:
    with pytest.raises(AlertConfigError, match=r"urls\[0\]") as info:
        target(tmp_path, url)
    assert named in str(info.value)
    assert "s3cret" not in str(info.value)


def test_the_demo_files_are_stamped_with_the_services_clock(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    file_target = target(tmp_path, f"rgfile://{out}")
    simulated = datetime(2024, 7, 3, 4, 35, tzinfo=UTC)
    with reporting(simulated):
        assert file_target.service.notify(body="正文", title="标题")
    assert json.loads(out.read_text(encoding="utf-8"))["at"] == simulated.isoformat()
    assert simulated < datetime.now(UTC) - timedelta(days=1)  # the wall clock would be today
