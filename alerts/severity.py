"""Warning level (蓝/黄/橙/红) of a pollution incident and the reasons for it ("why red").

The level starts from how far over the limit the water is, is raised for toxic pollutant classes
(heavy metals, unknown toxicants) and raised again when the plume reaches a drinking-water intake
soon. Every factor that moved the level becomes a :class:`~riverguard.incidents.Reason` that the
messages print. The thresholds are configuration (``severity:`` in the routing file). Class names
come from the pollutant catalogue (:class:`~riverguard.parameters.PollutantClass` labels), the same
the playbooks print.

>>> rule = SeverityRule()
>>> level, reasons = rule.assess(multiple=4.2, pollutant_class=PollutantClass.HEAVY_METAL, intake_hours=None)
>>> level
<WarningLevel.RED: 'red'>
>>> [r.zh for r in reasons]
['超标 4.2 倍 ≥ 3 倍 → 橙色', '重金属 → 升 1 级']
>>> SeverityRule().assess(multiple=0.3, pollutant_class=PollutantClass.ORGANIC, intake_hours=1.5)[0]
<WarningLevel.ORANGE: 'orange'>
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts.catalogue import Text, both, named
from alerts.intakes import IntakeOutlook, clock, intake_text
from riverguard.incidents import Reason, Route, WarningLevel
from riverguard.parameters import PARAMETERS, PollutantClass


class IntakeRaise(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    within_h: float = Field(gt=0)
    levels_up: int = Field(ge=0, le=3)


class SeverityRule(BaseModel):
    """The configurable rule. Defaults: 超标 ≥1 倍 yellow, ≥3 倍 orange, ≥10 倍 red; heavy metals and
    unknown toxicants one level up; intake reached within 2 h two levels up, within 8 h one up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    multiples: dict[WarningLevel, float] = Field(
        default_factory=lambda: {WarningLevel.YELLOW: 1.0, WarningLevel.ORANGE: 3.0, WarningLevel.RED: 10.0}
    )
    class_raise: dict[PollutantClass, int] = Field(
        default_factory=lambda: {PollutantClass.HEAVY_METAL: 1, PollutantClass.UNKNOWN: 1}
    )
    intake: tuple[IntakeRaise, ...] = (
        IntakeRaise(within_h=2.0, levels_up=2),
        IntakeRaise(within_h=8.0, levels_up=1),
    )

    @model_validator(mode="after")
    def _ordered(self) -> SeverityRule:
        if WarningLevel.BLUE in self.multiples:
            raise ValueError("multiples: blue is the floor (any exceedance); give thresholds for yellow/orange/red")
        ordered = sorted(self.multiples.items(), key=lambda kv: kv[0].rank)
        values = [v for _, v in ordered]
        if values != sorted(values):
            raise ValueError(f"multiples must grow with the level, got {dict(ordered)}")
        return self

    def assess(
        self,
        *,
        multiple: float | None,
        pollutant_class: PollutantClass,
        intake_hours: float | None,
        intake: IntakeOutlook | None = None,
    ) -> tuple[WarningLevel, tuple[Reason, ...]]:
        """The level and the factors that made it; ``intake`` (whose hours these are) names it in the reason."""
        rank = 1
        reasons: list[Reason] = []
        if multiple is None:
            reasons.append(both("reason.spike"))
        else:
            crossed = [(lvl, t) for lvl, t in self.multiples.items() if multiple >= t]
            if crossed:
                level, threshold = max(crossed, key=lambda kv: kv[0].rank)
                rank = level.rank
                level_text = named("level", level)
                reasons.append(both("reason.multiple", multiple=multiple, threshold=threshold, level=level_text))
            else:
                reasons.append(both("reason.multiple.low", multiple=multiple))
        bump = self.class_raise.get(pollutant_class, 0)
        if bump:
            rank += bump
            label = Text(pollutant_class.label_zh, pollutant_class.label_en)
            reasons.append(both("reason.class", pollutant_class=label, up=bump))
        if intake_hours is not None:
            for step in sorted(self.intake, key=lambda s: s.within_h):
                if intake_hours <= step.within_h and step.levels_up:
                    rank += step.levels_up
                    reasons.append(_intake_reason(intake_hours, intake, step))
                    break
        return WarningLevel.from_rank(rank), tuple(reasons)

    def of_incident(
        self, route: Route, pollutant: str, multiple: float | None, pollutant_class: PollutantClass | None,
        ahead: IntakeOutlook | None,
    ) -> tuple[WarningLevel, tuple[Reason, ...]]:
        """An incident's level: maintenance is blue; pollution by :meth:`assess`, with the class of the
        main pollutant unless the shell knows better. Only the intake ahead counts."""
        if route is Route.MAINTENANCE:
            return _MAINTENANCE
        if pollutant_class is None:
            spec = PARAMETERS.get(pollutant)
            pollutant_class = spec.pollutant_class if spec else PollutantClass.UNKNOWN
        return self.assess(multiple=multiple, pollutant_class=pollutant_class,
                           intake_hours=ahead.hours if ahead else None, intake=ahead)


_MAINTENANCE: Final = (WarningLevel.BLUE, (both("reason.maintenance"),))


def _intake_reason(hours: float, intake: IntakeOutlook | None, step: IntakeRaise) -> Reason:
    """Says when (``at``) it was assessed, so the hours read right whenever the reason is read."""
    if intake is None:
        return both("reason.intake.unnamed", hours=hours, within=step.within_h, up=step.levels_up)
    times = {"intake": intake_text(intake.name), "earliest": clock(intake.earliest_at),
             "expected": clock(intake.arrival_at), "at": clock(intake.at), "up": step.levels_up}
    if intake.arrived:
        return both("reason.intake.arrived", **times)
    return both("reason.intake.ahead", **times, hours=hours, within=step.within_h)
