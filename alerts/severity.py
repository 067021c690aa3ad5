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

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts.intakes import IntakeOutlook, clock, intake_label
from riverguard.incidents import Reason, WarningLevel
from riverguard.parameters import PollutantClass


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
            reasons.append(Reason(zh="异常突变（无标准限值）→ 蓝色", en="anomalous spike (no standard limit) → blue"))
        else:
            crossed = [(lvl, t) for lvl, t in self.multiples.items() if multiple >= t]
            if crossed:
                level, threshold = max(crossed, key=lambda kv: kv[0].rank)
                rank = level.rank
                reasons.append(
                    Reason(
                        zh=f"超标 {multiple:.1f} 倍 ≥ {threshold:g} 倍 → {level.label_zh}",
                        en=f"{multiple:.1f}× over the limit ≥ {threshold:g}× → {level.value}",
                    )
                )
            else:
                reasons.append(Reason(zh=f"超标 {multiple:.1f} 倍 → 蓝色", en=f"{multiple:.1f}× over the limit → blue"))
        bump = self.class_raise.get(pollutant_class, 0)
        if bump:
            rank += bump
            reasons.append(
                Reason(zh=f"{pollutant_class.label_zh} → 升 {bump} 级", en=f"{pollutant_class.label_en} → up {bump}")
            )
        if intake_hours is not None:
            for step in sorted(self.intake, key=lambda s: s.within_h):
                if intake_hours <= step.within_h and step.levels_up:
                    rank += step.levels_up
                    reasons.append(_intake_reason(intake_hours, intake, step))
                    break
        return WarningLevel.from_rank(rank), tuple(reasons)


def _intake_reason(hours: float, intake: IntakeOutlook | None, step: IntakeRaise) -> Reason:
    within_zh, within_en, up_zh, up_en = (
        f"≤ {step.within_h:g} 小时", f"≤ {step.within_h:g} h", f"升 {step.levels_up} 级", f"up {step.levels_up}"
    )
    if intake is None:
        return Reason(
            zh=f"{hours:.1f} 小时到达取水口 ({within_zh}) → {up_zh}",
            en=f"reaches a drinking-water intake in {hours:.1f} h ({within_en}) → {up_en}",
        )
    label = intake_label(intake.name)
    if intake.arrived:
        return Reason(
            zh=f"污染团已到达{label}（{clock(intake.at)}）→ {up_zh}",
            en=f"the plume is at intake {intake.name} ({clock(intake.at)}) → {up_en}",
        )
    return Reason(
        zh=f"预计 {clock(intake.arrival_at)} 到达{label}，约 {hours:.1f} 小时 ({within_zh}) → {up_zh}",
        en=f"reaches intake {intake.name} at {clock(intake.arrival_at)}, in {hours:.1f} h ({within_en}) → {up_en}",
    )
