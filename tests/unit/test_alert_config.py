"""Bad routing files and Apprise configs fail at start-up naming the bad entry; secrets stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.errors import AlertConfigError
from alerts.routing import load_routing
from alerts.service import AlertService
from alerts.severity import SeverityRule
from alerts.targets import load_directory
from riverguard.errors import ConfigError
from riverguard.incidents import Channel
from riverguard.parameters import PollutantClass
from riverguard.settings import load_settings

APPRISE = """\
version: 1
urls:
  - json://127.0.0.1:9/duty:
      - tag: tuo-duty
  - mailto://ops:s3cr3tpass@127.0.0.1:2525?to=chief@example.cn&from=rg@example.cn:
      - tag: chief
  - dingtalk://abcdefghij0123456789secrettoken/:
      - tag: bureau
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_example_configs_load_and_agree(tmp_path: Path) -> None:
    deploy = Path(__file__).resolve().parents[2] / "deploy" / "alerts"
    routing = load_routing(deploy / "routing.yaml")
    directory = load_directory(deploy / "apprise.yaml", routing.channels)
    directory.check_tags(routing.all_tags(), "apprise.yaml")
    assert {t.channel for t in directory.targets} >= {Channel.SMS, Channel.IM, Channel.EMAIL}


def test_channels_are_inferred_and_secrets_redacted(tmp_path: Path) -> None:
    directory = load_directory(write(tmp_path, "a.yaml", APPRISE), {"tuo-duty": Channel.SMS})
    channels = {next(iter(t.tags)): t.channel for t in directory.targets}
    assert channels == {"tuo-duty": Channel.SMS, "chief": Channel.EMAIL, "bureau": Channel.IM}
    shown = " ".join(t.redacted for t in directory.targets)
    assert "s3cr3tpass" not in shown
    assert "secrettoken" not in shown


def test_a_bad_apprise_url_is_named_without_its_secret(tmp_path: Path) -> None:
    bad = APPRISE + "  - tgram://not-a-bot-token-secret/123:\n      - tag: x\n"
    with pytest.raises(AlertConfigError, match=r"urls\[3\] \(tgram://\*\*\*\) is not a valid Apprise URL") as info:
        load_directory(write(tmp_path, "a.yaml", bad))
    assert "not-a-bot-token-secret" not in str(info.value)


def test_an_entry_without_tags_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(AlertConfigError, match=r"urls\[0\].*has no tag"):
        load_directory(write(tmp_path, "a.yaml", "urls:\n  - json://127.0.0.1:9/x\n"))


def test_routing_that_names_an_unknown_tag_fails(tmp_path: Path) -> None:
    directory = load_directory(write(tmp_path, "a.yaml", APPRISE))
    routing = load_routing(write(tmp_path, "r.yaml", "routes:\n  - name: tuo\n    notify: [tuo-duty]\n"
                                 "escalation:\n  stages:\n    - {after_min: 10, notify: [leaders]}\n"))
    with pytest.raises(AlertConfigError, match=r"escalation.stages\[0\] notifies tag 'leaders'"):
        directory.check_tags(routing.all_tags(), "a.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("routes:\n  - name: x\n    match: {min_level: purple}\n    notify: [a]\n",
         r"routes.0.match.min_level='purple'"),
        ("routes:\n  - name: x\n    notify: []\n", r"routes.0.notify"),
        ("escalation:\n  stages:\n    - {after_min: 30, notify: [a]}\n    - {after_min: 10, notify: [b]}\n",
         "increasing after_min"),
        ("severity:\n  multiples: {yellow: 5, orange: 2}\n", "must grow with the level"),
        ("silences:\n  - {until: '2030-01-01T00:00:00+08:00', reason: x}\n", "needs a station or a river"),
        ("routez: []\n", "routez"),
        ("- a\n", "must hold a mapping"),
    ],
)
def test_bad_routing_files_name_the_entry(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(AlertConfigError, match=message):
        load_routing(write(tmp_path, "r.yaml", text))


def test_service_start_up_checks_both_files(tmp_path: Path) -> None:
    from riverguard.stations import load_registry

    routing = write(tmp_path, "r.yaml", "routes:\n  - {name: x, notify: [nobody]}\n")
    settings = load_settings(alerts={"apprise_config": write(tmp_path, "a.yaml", APPRISE), "routing_file": routing})
    with pytest.raises(AlertConfigError, match=r"routes\[0\] \(x\) notifies tag 'nobody'"):
        AlertService.from_settings(settings, load_registry())
    with pytest.raises(ConfigError, match="apprise_config is not set"):
        AlertService.from_settings(load_settings(), load_registry())


def test_severity_rule_is_configurable() -> None:
    strict = SeverityRule.model_validate({"multiples": {"yellow": 0.1, "orange": 0.5, "red": 1.0}, "intake": []})
    level, reasons = strict.assess(multiple=1.2, pollutant_class=PollutantClass.ORGANIC, intake_hours=None)
    assert level.value == "red"
    assert "≥ 1 倍" in reasons[0].zh


def test_run_alert_refuses_to_start_on_a_bad_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    # A bad entry stops the command before it sets up logging or connects to anything.
    bad = write(tmp_path, "a.yaml", APPRISE + "  - nosuchscheme://x/y:\n      - tag: z\n")
    result = CliRunner().invoke(app, ["run", "alert"], env={"RIVERGUARD_ALERTS__APPRISE_CONFIG": str(bad)})
    assert result.exit_code == 2
    assert "urls[3] (nosuchscheme://***)" in result.output
