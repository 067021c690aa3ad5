"""The console in a real headless Chromium: what a duty officer and a viewer see and may do.

Cost: about 2 s per browser start on the 2-core box; the module runs in ~30 s (see the report).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from riverguard.incidents import SilenceRecord
from tests.console.conftest import Browser, ConsoleStack, eventually, spill

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

Open = Callable[[str], Any]


async def test_a_detection_appears_live_and_the_officers_ack_stops_the_escalation(
    stack: ConsoleStack, browsers: Open
) -> None:
    officer: Browser = await browsers("officer")
    await officer.sign_in("zhangsan")
    await officer.wait_for("#who", "张三")
    await officer.wait_for("#live-state", "●")  # the event stream is open before anything happens
    await officer.screenshot("incidents-empty")

    await stack.publish(spill(0, multiple=2.0))
    await eventually(stack.service.book.incidents, "no incident in the book")
    incident_id = stack.service.book.incidents()[0].incident_id
    row = await officer.wait_for(f"#row-{incident_id}")  # no reload: the row came over the event stream
    assert "NH3N" in row
    assert "黄色" in row
    await officer.screenshot("incidents-live")
    await eventually(lambda: stack.messages("duty"), "the duty officer got no message")

    await officer.click(f"#row-{incident_id} a")
    await officer.wait_for("#receptors")
    cold = await officer.navigation_ms()  # opened at once: the map may still be drawing
    await officer.open(f"/incidents/{incident_id}")
    await officer.wait_for("#receptors")
    warm = await officer.navigation_ms()
    assert cold["load"] > 0
    assert warm["load"] > 0
    await officer.wait_for("#timeline", "事件发生")
    assert await officer.present("#map")
    await officer.screenshot("incident")
    await officer.type("#ack-form input[name=note]", "已派人前往")
    await officer.click("#ack")
    await officer.wait_for("#status", "已确认")
    assert "张三 (zhangsan)" in await officer.text("#acknowledged-by")
    acknowledged = stack.service.book.get(incident_id)
    assert acknowledged.acknowledged_by == "张三 (zhangsan)"

    for _ in range(6):  # 30 min: stage 1 (15 min) would have paged the chief, reminders every 10
        stack.clock.advance(minutes=5)
        await eventually(lambda: not stack.service.book.due(stack.clock()), "deliveries did not settle")
    assert stack.messages("chief") == []
    assert stack.service.book.get(incident_id).escalation_stage == 0
    audit = [json.loads(line) for line in stack.audit.read_text(encoding="utf-8").splitlines()]
    assert [(e["who"], e["action"], e["target"]) for e in audit if e["action"] == "acknowledge"] == [
        ("张三 (zhangsan)", "acknowledge", incident_id)]


async def test_without_an_ack_the_chief_is_paged(stack: ConsoleStack) -> None:
    """The other half of the test above: the same escalation runs when nobody acknowledges."""
    await stack.publish(spill(0, multiple=2.0))
    await eventually(lambda: stack.messages("duty"), "the duty officer got no message")
    for _ in range(4):
        stack.clock.advance(minutes=5)
        await eventually(lambda: not stack.service.book.due(stack.clock()), "deliveries did not settle")
    await eventually(lambda: stack.messages("chief"), "the chief was not paged at 15 min")


async def test_a_viewer_sees_no_action_and_the_endpoint_refuses_them(stack: ConsoleStack, browsers: Open) -> None:
    await stack.publish(spill(0, multiple=2.0))
    await eventually(stack.service.book.incidents, "no incident")
    incident_id = stack.service.book.incidents()[0].incident_id
    viewer: Browser = await browsers("viewer")
    await viewer.sign_in("lisi")
    await viewer.wait_for("#read-only")
    await viewer.open(f"/incidents/{incident_id}")
    await viewer.wait_for("#timeline")
    assert not await viewer.present("#ack")
    assert not await viewer.present("#resolve")
    await viewer.screenshot("incident-viewer")

    # the viewer's own session and CSRF token, posted straight at the endpoint
    csrf = await viewer.run(viewer.driver.execute_script,
                            "return document.querySelector('input[name=csrf]').value")
    cookies = {c["name"]: c["value"] for c in await viewer.run(viewer.driver.get_cookies)}
    async with aiohttp.ClientSession(cookies=cookies) as http, http.post(
        f"{stack.url}/incidents/{incident_id}/ack", data={"csrf": csrf, "note": "x"}) as response:
        assert response.status == 403
        assert "无权执行此操作" in await response.text()
    assert stack.service.book.get(incident_id).status.value == "open"
    audit = stack.audit.read_text(encoding="utf-8")
    assert '"action": "forbidden"' in audit
    assert "李四 (lisi)" in audit


async def test_ticking_an_action_shows_for_another_signed_in_user(stack: ConsoleStack, browsers: Open) -> None:
    await stack.publish(spill(0, multiple=2.0))
    await eventually(stack.service.book.incidents, "no incident")
    incident_id = stack.service.book.incidents()[0].incident_id
    officer: Browser = await browsers("officer")
    viewer: Browser = await browsers("viewer")
    await officer.sign_in("zhangsan")
    await viewer.sign_in("lisi")
    for person in (officer, viewer):
        await person.open(f"/incidents/{incident_id}")
        await person.wait_for("#actions tbody tr")
        await person.wait_for("#live-state", "●")  # following the incident before anything changes
    row = str(await officer.run(officer.driver.execute_script,
                                "return document.querySelector('#actions tbody tr').id"))
    assert not await viewer.present(f"#{row} .tick-button")  # a viewer sees the checklist, cannot tick

    await officer.click(f"#{row} .tick-button")
    await officer.wait_for(f"#{row} .ticked-by", "张三 (zhangsan)")
    # the viewer's page was not reloaded: the checklist part came again over the event stream
    ticked = await viewer.wait_for(f"#{row} .ticked-by", "张三 (zhangsan)")
    assert "✔" in ticked
    assert "done" in str(await viewer.run(viewer.driver.execute_script,
                                          f"return document.getElementById('{row}').className"))
    await viewer.wait_for("#timeline", "措施完成")
    await officer.screenshot("incident-checklist")

    action = row.removeprefix("action-")
    (tick,) = stack.service.book.get(incident_id).checklist
    assert (tick.action_id, tick.done, tick.by) == (action, True, "张三 (zhangsan)")
    await officer.click(f"#{row} .tick-button")  # undo: the same button, now 撤销
    await viewer.wait_for(f"#{row} .ticked-by", "↺")
    assert not stack.service.book.get(incident_id).checklist[0].done
    audit = [json.loads(line) for line in stack.audit.read_text(encoding="utf-8").splitlines()]
    assert [(e["action"], e["action_id"]) for e in audit if "action_id" in e] == [
        ("tick_action", action), ("untick_action", action)]


async def test_a_silence_set_in_the_console_holds_back_a_matching_incidents_notifications(
    stack: ConsoleStack, browsers: Open
) -> None:
    await stack.publish(spill(0, multiple=2.0))
    await eventually(lambda: stack.messages("duty"), "the duty officer got no message")
    incident_id = stack.service.book.incidents()[0].incident_id
    officer: Browser = await browsers("officer")
    await officer.sign_in("zhangsan")
    await officer.open(f"/incidents/{incident_id}")
    await officer.click("#silence-like")  # the form comes filled in with the incident's match
    await officer.wait_for("#silence-form")
    assert await officer.run(officer.driver.execute_script, "return document.getElementById('s-pollutant').value") \
        == "NH3N"
    await officer.type("#s-duration", "4h")
    await officer.type("#s-reason", "上游企业报备的检修排放")
    await officer.click("#add-silence")

    def set_here() -> list[SilenceRecord]:
        return [s for s in stack.service.silences() if not s.silence_id.startswith("routing:")]

    await eventually(set_here, "the silence was not set")
    (silence,) = set_here()
    listed = await officer.wait_for(f"#{silence.silence_id}", incident_id)  # it names what it holds back
    assert "上游企业报备的检修排放" in listed
    assert "tuo" in listed
    await officer.screenshot("silences")
    await officer.open(f"/incidents/{incident_id}")
    await officer.wait_for("#silenced", silence.silence_id)

    book = stack.service.book
    stack.clock.advance(minutes=10)  # the first reminder is due ...
    await eventually(lambda: book.get(incident_id).reminders_sent == 1, "no reminder at 10 min")
    stack.clock.advance(minutes=5)  # ... and the chief's page at 15 min
    await eventually(lambda: book.get(incident_id).escalation_stage == 1, "no escalation at 15 min")
    held = [e for e in book.get(incident_id).outbox if e.status.value == "suppressed"]
    assert {e.reason.value for e in held} == {"reminder", "escalation"}
    assert all(silence.silence_id in e.note for e in held)
    assert len(stack.messages("duty")) == 1
    assert stack.messages("chief") == []

    await stack.publish(spill(16, event="evt-tp", parameter="TP"))  # the same river, another pollutant
    await eventually(lambda: len(stack.messages("duty")) == 2, "a silence for NH3N held back a TP incident")

    await officer.open("/silences")
    await officer.click(f"#{silence.silence_id} .expire")
    await officer.wait_for("#silences")
    assert not await officer.present(f"#{silence.silence_id}")
    await officer.open(f"/incidents/{incident_id}")
    await officer.wait_for("#timeline", "静默结束")
    assert not await officer.present("#silenced")
    stack.clock.advance(minutes=10)  # the next reminder goes to the duty officer and the chief again
    await eventually(lambda: stack.messages("chief"), "no reminder after the silence ended")
    assert any(incident_id in m["body"] for m in stack.messages("chief"))
    audit = [json.loads(line) for line in stack.audit.read_text(encoding="utf-8").splitlines()]
    assert [(e["action"], e["target"]) for e in audit if "silence" in e["action"]] == [
        ("add_silence", silence.silence_id), ("expire_silence", silence.silence_id)]


async def test_resolving_asks_the_verdict_and_the_station_shows_its_false_alarm_rate(
    stack: ConsoleStack, browsers: Open
) -> None:
    await stack.publish(spill(0, multiple=2.0))
    await eventually(stack.service.book.incidents, "no incident")
    incident = stack.service.book.incidents()[0]
    officer: Browser = await browsers("officer")
    await officer.sign_in("zhangsan")
    await officer.open(f"/incidents/{incident.incident_id}")
    await officer.click("#resolve")  # no verdict chosen: the browser does not send the form
    assert stack.service.book.get(incident.incident_id).is_active
    await officer.click("#verdict-false_alarm")
    await officer.type("#resolve-form input[name=note]", "探头附着物，现场水样正常")
    await officer.click("#resolve")
    await officer.wait_for("#status", "已解除")
    assert await officer.text("#verdict") == "误报"

    await officer.open("/stations")
    rate = await officer.wait_for(f"#station-{incident.first_station} .verdicts", "%")
    assert rate.startswith("100 %")
    assert "(1/1)" in rate
    await officer.screenshot("stations")
    await officer.click(f"#station-{incident.first_station} a")
    await officer.wait_for("#verdicts", incident.incident_id)
    assert "误报" in await officer.text("#verdicts")

    # a verdict corrected later (the lab result came back): the record and the rate follow
    await officer.open(f"/incidents/{incident.incident_id}")
    await officer.click("#verdict-confirmed_pollution")
    await officer.click("#resolve")
    await officer.wait_for("#verdict", "确认污染")
    await officer.open(f"/stations/{incident.first_station}")
    assert (await officer.wait_for("#false-alarm-rate", "%")).startswith("0 %")
    await officer.screenshot("station")
