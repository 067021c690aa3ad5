"""``riverguard trace`` input and output: the observations file and the answer (JSON, Markdown).

The observations file (issue 18)::

    {"pollutant": "NH3N",
     "observations": [{"station_id": "tuo-sanhuangmiao", "first_exceeded_at": "2024-07-01T12:00+08:00",
                       "peak_at": "...", "peak_concentration": 3.1, "normal_again_at": null}],
     "clean": [{"station_id": "tuo-hongyuan", "until": "2024-07-01T18:00+08:00"}]}

An observation may also give ``threshold`` (mg/L, what "exceeded" means; default the pollutant's
drinking-water limit). The answer: ``release`` (km_low, km_high, km_best, start_low, start_high,
mass_kg) and ``candidates`` (name, kind, river_km, probability), most likely first.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from playbooks.clock import stamp
from playbooks.models import StationObservation
from playbooks.network import RiverNetwork
from playbooks.pollutants import pollutant as lookup_pollutant
from playbooks.tracing import CleanStation, Trace

SCHEMA = "riverguard.trace/1"


class TraceRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pollutant: str
    observations: list[StationObservation] = Field(min_length=1)
    clean: list[CleanStation] = Field(default_factory=list)


def trace_json(result: Trace) -> dict[str, Any]:
    r = result.release
    return {
        "schema": SCHEMA,
        "release": {
            "km_low": r.km_low,
            "km_high": r.km_high,
            "km_best": r.km_best,
            "start_low": r.start_low.isoformat(),
            "start_high": r.start_high.isoformat(),
            "mass_kg": r.mass_kg,
        },
        "candidates": [
            {"name": c.name, "kind": c.kind, "river_km": c.river_km, "probability": c.probability}
            for c in result.candidates
        ],
        "unregistered_reach": list(result.unregistered) if result.unregistered else None,
    }


def trace_markdown(result: Trace, network: RiverNetwork, pollutant: str) -> str:
    """A short Chinese report: the release window and where to inspect first."""
    r = result.release
    lines = [
        f"# {network.name_zh}{lookup_pollutant(pollutant).name_zh}溯源分析",
        "",
        f"- **疑似排放河段**: km {r.km_low:g}–{r.km_high:g}（最可能 km {r.km_best:g}）",
        f"- **疑似排放开始时间**: {stamp(r.start_low)} — {stamp(r.start_high)}（UTC+8）",
        f"- **估算排放量**: 约 {r.mass_kg:g} kg",
        "",
        "## 优先排查（按可能性）",
        "",
        "| 排序 | 名称 | 类型 | 位置 (km) | 可能性 |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {i} | {c.name} | {c.kind} | {c.river_km:g} | {c.probability:.0%} |"
        for i, c in enumerate(result.candidates, start=1)
    ]
    if result.unregistered:
        low, high = result.unregistered
        lines += ["", f"名录中的排口与风险源解释不足：可能为 km {low:g}–{high:g} 河段的未登记排放，请沿岸排查。"]
    lines += ["", "方法：以一维对流—弥散模型为正演的贝叶斯反演（区间为 92%），流速不确定性 ±30%。"]
    return "\n".join(lines) + "\n"
