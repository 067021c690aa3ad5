"""The console in a real headless Chromium: what a duty officer and a viewer see and may do.

Cost: about 2 s per browser start on the 2-core box; the module runs in ~30 s (see the report).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

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
