"""The console's guards over plain HTTP (no browser): sign-in, throttle, CSRF, origin, roles,
redirects, language; the users command; the station board against the real InfluxDB."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from typer.testing import CliRunner

from console.users import load_users
from pipeline.cli import app
from tests.console.conftest import ConsoleStack, eventually, spill

pytestmark = pytest.mark.integration


async def sign_in(http: aiohttp.ClientSession, stack: ConsoleStack, user: str, password: str,
                  next_path: str = "") -> aiohttp.ClientResponse:
    async with http.get(f"{stack.url}/login") as page:
        csrf = csrf_of(await page.text())
    return await http.post(f"{stack.url}/login", allow_redirects=False,
                           data={"user": user, "password": password, "csrf": csrf, "next": next_path})


def client() -> aiohttp.ClientSession:
    """A client that keeps cookies of an IP-address host (aiohttp's jar drops them by default)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def csrf_of(page: str) -> str:
    return page.split('name="csrf" value="', 1)[1].split('"', 1)[0]


async def test_signing_in_is_throttled_and_every_attempt_audited(stack: ConsoleStack) -> None:
    async with client() as http:
        for _ in range(3):
            refused = await sign_in(http, stack, "zhangsan", "wrong-password")
            assert refused.status == 401
            assert "用户名或密码错误" in await refused.text()
        throttled = await sign_in(http, stack, "zhangsan", "duty-password-1")  # right, but too late
        assert throttled.status == 429
        assert int(throttled.headers["Retry-After"]) > 0
        assert "登录失败次数过多" in await throttled.text()
    audit = [json.loads(line) for line in stack.audit.read_text(encoding="utf-8").splitlines()]
    assert [e["outcome"] for e in audit if e["action"] == "sign_in"] == ["refused"] * 3 + ["throttled"]
    assert "duty-password" not in stack.audit.read_text(encoding="utf-8")


async def test_a_session_cookie_is_httponly_strict_and_pages_need_it(stack: ConsoleStack) -> None:
    async with client() as http:
        async with http.get(f"{stack.url}/", allow_redirects=False) as anonymous:
            assert anonymous.status == 303
            assert anonymous.headers["Location"].startswith("/console/login?next=")
        async with http.get(f"{stack.url}/events") as events:
            assert events.status == 401
        signed = await sign_in(http, stack, "zhangsan", "duty-password-1")
        assert signed.status == 303
        cookie = signed.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        async with http.get(f"{stack.url}/") as page:
            text = await page.text()
            assert page.headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self'")
        assert "张三 (zhangsan)" in text
        assert "console-test-token" not in text  # nothing secret in a page
        assert "argon2" not in text


async def test_posts_without_the_token_or_from_another_site_are_refused(stack: ConsoleStack) -> None:
    await stack.publish(spill(0))
    await eventually(stack.service.book.incidents, "no incident")
    incident_id = stack.service.book.incidents()[0].incident_id
    ack = f"{stack.url}/incidents/{incident_id}/ack"
    async with client() as http:
        await sign_in(http, stack, "zhangsan", "duty-password-1")
        async with http.get(f"{stack.url}/incidents/{incident_id}") as page:
            csrf = csrf_of(await page.text())
        async with http.post(ack, data={"note": "x"}) as missing:
            assert missing.status == 403
        async with http.post(ack, data={"csrf": "forged", "note": "x"}) as forged:
            assert forged.status == 403
        async with http.post(ack, data={"csrf": csrf}, headers={"Origin": "http://evil.example"}) as cross:
            assert cross.status == 403
        assert stack.service.book.get(incident_id).status.value == "open"
        async with http.post(ack, data={"csrf": csrf, "note": "ok"}, allow_redirects=False) as done:
            assert done.status == 303
        assert stack.service.book.get(incident_id).acknowledged_by == "张三 (zhangsan)"


async def test_a_viewer_may_not_tick_silence_end_a_silence_or_resolve(stack: ConsoleStack) -> None:
    await stack.publish(spill(0))
    await eventually(stack.service.book.incidents, "no incident")
    incident_id = stack.service.book.incidents()[0].incident_id
    async with client() as http:
        await sign_in(http, stack, "lisi", "viewer-password-1")
        async with http.get(f"{stack.url}/incidents/{incident_id}") as page:
            text = await page.text()
        csrf = csrf_of(text)
        key = text.split('id="action-', 1)[1].split('"', 1)[0]  # the checklist is shown, without buttons
        assert "tick-button" not in text
        attempts = {
            f"/incidents/{incident_id}/actions/{key}": {"done": "1"},
            "/silences": {"river": "tuo", "duration": "1h", "reason": "x"},
            "/silences/routing:0/expire": {},
            f"/incidents/{incident_id}/resolve": {"verdict": "drill"},
        }
        for path, form in attempts.items():
            async with http.post(f"{stack.url}{path}", data={"csrf": csrf, **form}, allow_redirects=False) as refused:
                assert refused.status == 403, path
                assert "无权执行此操作" in await refused.text()
    incident = stack.service.book.get(incident_id)
    assert (incident.is_active, incident.checklist, incident.verdict) == (True, (), None)
    assert [s.silence_id for s in stack.service.silences()] == ["routing:0"]


async def test_wrong_silences_and_a_resolve_without_verdict_are_named_and_change_nothing(stack: ConsoleStack) -> None:
    await stack.publish(spill(0))
    await eventually(stack.service.book.incidents, "no incident")
    incident_id = stack.service.book.incidents()[0].incident_id
    wrong = [
        ({"duration": "1h", "reason": "检修"}, "请选择站点或河流"),
        ({"river": "tuo", "duration": "90d", "reason": "检修"}, "静默最长 30 天"),
        ({"river": "tuo", "duration": "soon", "reason": "检修"}, "时长应为正数"),
        ({"river": "min", "station": "tuo-jiaoxiancun", "duration": "1h", "reason": "检修"}, "站点不在所选河流上"),
        ({"station": "tuo-nowhere", "duration": "1h", "reason": "检修"}, "没有这个站点：tuo-nowhere"),
        ({"river": "tuo", "duration": "1h", "reason": ""}, "请填写原因"),
    ]
    async with client() as http:
        await sign_in(http, stack, "zhangsan", "duty-password-1")
        async with http.get(f"{stack.url}/silences") as page:
            csrf = csrf_of(await page.text())
        for form, message in wrong:
            async with http.post(f"{stack.url}/silences", data={"csrf": csrf, **form}) as refused:
                text = await refused.text()
                assert (refused.status, message in text) == (400, True), form
                assert f'value="{form["duration"]}"' in text  # what was typed is kept
        async with http.post(f"{stack.url}/silences/routing:0/expire", data={"csrf": csrf}) as from_file:
            assert from_file.status == 409
            assert "comes from the routing file" in await from_file.text()
        async with http.post(f"{stack.url}/incidents/{incident_id}/resolve", data={"csrf": csrf, "note": "x"}) as bare:
            assert bare.status == 400
            assert "请先选择结论" in await bare.text()
        async with http.post(f"{stack.url}/incidents/{incident_id}/actions/ANOPE", data={"csrf": csrf}) as unknown:
            assert unknown.status == 404
    assert [s.silence_id for s in stack.service.silences()] == ["routing:0"]
    assert stack.service.book.get(incident_id).is_active
    audit = [json.loads(line) for line in stack.audit.read_text(encoding="utf-8").splitlines()]
    assert [(e["action"], e["outcome"]) for e in audit if e["action"] == "expire_silence"] == [
        ("expire_silence", "refused")]


async def test_next_never_leaves_the_console_and_english_is_one_click_away(stack: ConsoleStack) -> None:
    async with client() as http:
        for target in ("https://evil.example/", "//evil.example/x", "/elsewhere"):
            signed = await sign_in(http, stack, "lisi", "viewer-password-1", target)
            assert signed.headers["Location"] == "/console/"
        signed = await sign_in(http, stack, "lisi", "viewer-password-1", "/console/stations")
        assert signed.headers["Location"] == "/console/stations"
        async with http.get(f"{stack.url}/lang/en?next=/console/stations") as english:
            text = await english.text()
        assert str(english.url).endswith("/console/stations")
        assert "Read-only account: no actions" in text
        assert "Last reading" in text


def test_console_user_add_writes_an_argon2_hash_and_refuses_weak_passwords(tmp_path: Path) -> None:
    users = tmp_path / "users.yaml"
    runner = CliRunner()
    added = runner.invoke(app, ["console-user", "add", "zhaoliu", "--role", "viewer", "--display", "赵六",
                                "--file", str(users), "--password-stdin"], input="a-long-password\n")
    assert added.exit_code == 0, added.output
    user = load_users(users).check("zhaoliu", "a-long-password")
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert "a-long-password" not in users.read_text(encoding="utf-8")
    assert users.stat().st_mode & 0o077 == 0
    weak = runner.invoke(app, ["console-user", "add", "x", "--role", "duty", "--file", str(users),
                               "--password-stdin"], input="short\n")
    assert weak.exit_code == 2
    assert "shorter than 10 characters" in weak.output
    listed = runner.invoke(app, ["console-user", "list", "--file", str(users)])
    assert listed.output.strip() == "zhaoliu\tviewer\t赵六"


async def test_the_station_board_draws_readings_from_influxdb_and_flags_silent_stations(
    stack: ConsoleStack,
) -> None:
    # a moment of its own in the shared bucket, so no other test's points fall into its 24 h
    moment = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(hours=random.randrange(200_000))
    influx = stack.settings.influx
    lines = [f"reading,parameter=NH3N,river=tuo,station=tuo-jiaoxiancun flag=\"N\",value={0.3 + 0.1 * (i % 5)} "
             f"{int((moment - timedelta(minutes=30 * i)).timestamp() * 1e9)}" for i in range(40)]
    with InfluxDBClient(url=influx.url, token=influx.token.get_secret_value(), org=influx.org) as writer:
        writer.write_api(write_options=SYNCHRONOUS).write(bucket=influx.bucket, record=lines)
    stack.clock.now = moment + timedelta(minutes=5)
    async with client() as http:
        await sign_in(http, stack, "lisi", "viewer-password-1")
        async with http.get(f"{stack.url}/stations") as page:
            text = await page.text()
    row = text.split('id="station-tuo-jiaoxiancun"', 1)[1].split("</tr>", 1)[0]
    assert "<polyline points=" in row
    assert "NH3N" in row
    assert "长时间无数据" not in row
    other = text.split('id="station-tuo-damozi"', 1)[1].split("</tr>", 1)[0]
    assert "长时间无数据" in other
    assert '<tr id="station-tuo-damozi" class="silent">' in text
    assert '<tr id="station-tuo-jiaoxiancun" class="">' in text
