"""What a duty officer reads: detection messages (Chinese first, English after) and confidence."""

from __future__ import annotations

import math
from typing import Final

from riverguard.models import DetectionKind, DetectionPhase, Finding, Reading
from riverguard.parameters import PARAMETERS
from riverguard.stations import Station

_K = DetectionKind

_KIND_ZH: Final = {
    _K.POLLUTION_SPIKE: "水质突变",
    _K.LIMIT_EXCEEDANCE: "超标",
    _K.SENSOR_FAULT: "仪器故障",
    _K.MAINTENANCE: "仪器维护",
    _K.DATA_GAP: "数据中断",
    _K.ECOLOGICAL_FLOW_LOW: "生态流量不足",
    _K.CLASS_DOWNGRADE: "水质类别下降",
}
_PHASE_ZH: Final = {DetectionPhase.ONSET: "开始", DetectionPhase.UPDATE: "持续", DetectionPhase.CLEARED: "解除"}


def spike_confidence(score: float, threshold: float) -> float:
    """How sure a spike is: 0.63 at the threshold, approaching 1 well above it.

    >>> spike_confidence(3.0, 3.0), spike_confidence(12.0, 3.0)
    (0.6321, 0.9817)
    """
    return round(min(1.0, max(0.0, 1.0 - math.exp(-score / max(threshold, 1e-9)))), 4)


def message(
    reading: Reading,
    station: Station | None,
    kind: DetectionKind,
    phase: DetectionPhase,
    findings: tuple[Finding, ...],
    note: str,
) -> str:
    """Chinese first, English after a slash: what the duty officer reads on the phone."""
    where = (station.section if station else None) or reading.section or reading.station_id
    zh_parts, en_parts = [], []
    for f in findings:
        spec = PARAMETERS.get(f.parameter)
        zh_name = spec.name_zh if spec else f.parameter
        en_name = spec.name_en if spec else f.parameter
        if f.multiple:
            times = f"{f.multiple:.1f}" if f.multiple >= 0.1 else f"{f.multiple:.2g}"
            zh_parts.append(f"{zh_name} {f.value:g}{f.unit}（超标 {times} 倍）")
            en_parts.append(f"{en_name} {f.value:g}{f.unit} ({times} times over the limit)")
        else:
            base = f"，基线 {f.baseline:.3g}" if f.baseline is not None else ""
            base_en = f", baseline {f.baseline:.3g}" if f.baseline is not None else ""
            zh_parts.append(f"{zh_name} {f.value:g}{f.unit}{base}")
            en_parts.append(f"{en_name} {f.value:g}{f.unit}{base_en}")
    extra = f" {note}" if note else ""
    zh = f"{where} {_KIND_ZH[kind]}{_PHASE_ZH[phase]}：{'；'.join(zh_parts)}{extra}"
    en = f"{where} {kind.value.replace('_', ' ')} {phase.value}: {'; '.join(en_parts)}{extra}"
    return f"{zh} / {en}"
