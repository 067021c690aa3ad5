"""What a duty officer reads: detection messages (Chinese first, English after) and confidence."""

from __future__ import annotations

import math
from typing import Final

from detectors.faults import FaultType
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
    subtype: str = "",
    upstream: str = "",
) -> str:
    """Chinese first, English after a slash: what the duty officer reads on the phone; ``subtype``
    names a sensor fault's type (:class:`~detectors.faults.FaultType`), ``upstream`` the station
    upstream that reported the same parameters first.

    >>> from datetime import datetime, timezone
    >>> from riverguard.models import Measurement, SourceFormat
    >>> r = Reading(station_id="tuo-a", river="tuo", time=datetime(2024, 5, 1, tzinfo=timezone.utc),
    ...             values={"turbidity": Measurement(value=9.4)}, source_format=SourceFormat.JSON)
    >>> f = Finding(parameter="turbidity", value=9.4, baseline=2.6, unit="NTU")
    >>> text = message(r, None, DetectionKind.SENSOR_FAULT, DetectionPhase.ONSET, (f,), "", "level_shift")
    >>> for part in text.split(" / "):
    ...     print(part)
    tuo-a 仪器故障开始（阶跃偏移）：浊度 9.4NTU，基线 2.6
    tuo-a sensor fault onset (level shift): turbidity 9.4NTU, baseline 2.6
    """
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
    sub_zh = f"（{FaultType(subtype).zh}）" if subtype else ""
    sub_en = f" ({subtype.replace('_', ' ')})" if subtype else ""
    up_zh = f"（上游 {upstream} 已报告）" if upstream else ""
    up_en = f" (reported upstream at {upstream})" if upstream else ""
    zh = f"{where} {_KIND_ZH[kind]}{_PHASE_ZH[phase]}{sub_zh}：{'；'.join(zh_parts)}{extra}{up_zh}"
    en = f"{where} {kind.value.replace('_', ' ')} {phase.value}{sub_en}: {'; '.join(en_parts)}{extra}{up_en}"
    return f"{zh} / {en}"
