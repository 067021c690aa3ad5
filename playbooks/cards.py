"""Action cards (一策): the response steps for a pollutant, placed on the network.

The card — what to do, with which materials — is the pollutant's treatment in the core catalogue
(:mod:`riverguard.pollutants`: its own where it has one, e.g. thallium, else its class's);
:func:`action_steps` puts it on the river: the first interception point the plume reaches that
can do it, the depot that holds the materials, every intake in the plume's path with a deadline,
and who does each step. A deadline is the fast-band leading edge at that place minus
:data:`SAFETY_MARGIN` (never before the alert).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from playbooks.clock import clock
from playbooks.models import ActionStep, DepartmentContact, Playbook, ReceptorArrival
from playbooks.network import Department, Depot, RiverNetwork, Role
from playbooks.pollutants import pollutant
from riverguard.pollutants import Treatment

#: Time kept between a deadline and the earliest (fast-band) arrival of the plume.
SAFETY_MARGIN: Final = timedelta(hours=1)
#: Inspection tasks: one per likely source, most likely first, up to this many.
_INSPECTIONS: Final = 3


def action_steps(network: RiverNetwork, playbook: Playbook) -> list[ActionStep]:
    """The ordered steps of the plan (ordered by deadline, then by how they are listed here)."""
    card = pollutant(playbook.pollutant).treatment
    steps: list[tuple[datetime, str, str, str, list[Department]]] = []
    at = playbook.at
    own = _departments(network, playbook.station_city, "environment")

    sample_zh = f"，{card.sample_zh}" if card.sample_zh else ""
    sample_en = f"; {card.sample_en}" if card.sample_en else ""
    steps.append(
        (
            at + timedelta(hours=1),
            f"现场核实{playbook.station_name}{playbook.pollutant_name_zh}数据，"
            f"采样复核并加密监测至每小时 1 次{sample_zh}",
            f"verify the {playbook.pollutant_name_en} reading at {playbook.station_name} on site, take samples and "
            f"monitor hourly{sample_en}",
            playbook.station_name,
            own,
        )
    )

    steps += _inspections(network, playbook, own)

    if card.dilute:
        for point in network.interception_points:
            if "dilute" in point.capabilities and point.river_km <= playbook.station_km:
                steps.append(
                    (
                        at + timedelta(hours=2),
                        f"协调{point.name}加大下泄流量稀释（兼顾防洪与生态流量）",
                        f"ask {point.name} to release more water for dilution",
                        point.name,
                        _departments(network, point.city, "water"),
                    )
                )

    target = _interception_point(playbook.receptors, card)
    if target is not None:
        deadline = _deadline(target, at)
        steps.append(
            (
                deadline,
                f"在{target.name}{card.zh}，{clock(deadline, at)}前就位",
                f"at {target.name}: {card.en}, in place by {clock(deadline, at)}",
                target.name,
                _departments(network, target.city, "environment", "emergency"),
            )
        )
        depot = _depot(network.depots, card.materials, target.river_km)
        if depot is not None:
            materials = [m for m in depot.materials if m in card.materials]
            steps.append(
                (
                    deadline,
                    f"从{depot.name}调运{'、'.join(materials)}至{target.name}，{clock(deadline, at)}前运抵",
                    f"bring {', '.join(materials)} from {depot.name} to {target.name} by {clock(deadline, at)}",
                    depot.name,
                    _departments(network, depot.city, "emergency"),
                )
            )

    for receptor in playbook.receptors:
        if receptor.kind != "intake":
            continue
        deadline = _deadline(receptor, at)
        when = f"{clock(deadline, at)}前" if deadline > at else "立即"
        people = f"（供水约 {receptor.population / 10_000:g} 万人）" if receptor.population else ""
        who = _departments(network, receptor.city, "water_supply", "water")
        close = receptor.exceeds_limit or (receptor.exceeds_limit is None and card.close_when_unknown)
        if close:
            steps.append(
                (
                    deadline,
                    f"{when}关闭{receptor.name}{people}，启用备用水源/应急供水，连续监测达标后恢复取水",
                    f"close {receptor.name} before {clock(deadline, at)}, switch to backup supply; reopen after "
                    "consecutive compliant samples",
                    receptor.name,
                    who,
                )
            )
        else:
            steps.append(
                (
                    deadline,
                    f"{when}在{receptor.name}所属水厂投加粉末活性炭、强化处理并加密取水口监测，做好关闭取水口准备",
                    f"before {clock(deadline, at)}: powdered activated carbon and enhanced treatment at the "
                    f"works of {receptor.name}, monitor the intake, be ready to close it",
                    receptor.name,
                    who,
                )
            )

    downstream = [r.city for r in playbook.receptors if r.city and r.city != playbook.station_city]
    cities = list(dict.fromkeys(downstream))
    reaches_outlet = any(r.kind == "outlet" for r in playbook.receptors)
    if cities or reaches_outlet or playbook.beyond_horizon:
        named = "、".join(cities) if cities else "下游"
        outlet = "及干流下游省市" if reaches_outlet else ""
        steps.append(
            (
                at + timedelta(hours=1),
                f"向{named}{outlet}通报污染团动向与预计到达时间",
                "notify the downstream cities of the plume and its expected arrival",
                named,
                own + [d for c in cities for d in _departments(network, c, "environment")],
            )
        )

    steps.sort(key=lambda step: step[0])
    return [
        ActionStep(
            order=index,
            what_zh=zh,
            what_en=en,
            where=where,
            who="、".join(d.name for d in who) or "值班室",
            deadline=deadline,
            apprise_tags=tuple(dict.fromkeys(t for d in who for t in d.apprise_tags)),
        )
        for index, (deadline, zh, en, where, who) in enumerate(steps, start=1)
    ]


def _inspections(
    network: RiverNetwork, playbook: Playbook, own: list[Department]
) -> list[tuple[datetime, str, str, str, list[Department]]]:
    """Where to inspect first: a task per likely source (most likely first), else walk the outfalls."""
    at = playbook.at
    when = at + timedelta(hours=2)
    release = playbook.release
    window_zh = window_en = ""
    if release is not None:
        span = f"{clock(release.start_low, at)}–{clock(release.start_high, at)}"
        window_zh, window_en = f"，重点核查 {span} 的排放记录", f"; check discharges {span}"
    tasks = []
    for source in playbook.suspected_sources[:_INSPECTIONS]:
        who = _departments(network, source.city, "environment") if source.city else own
        chance = f"（可能性 {source.probability:.0%}）" if source.probability is not None else ""
        chance_en = f" ({source.probability:.0%} likely)" if source.probability is not None else ""
        if source.kind == "unregistered":
            tasks.append((when, f"沿{source.name.removeprefix('未登记排放')}河段排查未登记排口{chance}{window_zh}",
                          f"walk the reach for an unregistered outfall {source.name}{chance_en}{window_en}",
                          source.name, own))
            continue
        operator = f"（{source.enterprise}）" if source.enterprise else ""
        tasks.append((when, f"排查{source.name}{operator}{chance}{window_zh}",
                      f"inspect {source.name}{chance_en}{window_en}", source.name, who))
    if not tasks:
        tasks.append((when, "沿上游排查入河排污口（名录中无匹配风险源）",
                      "walk the outfalls upstream (no registered source matches)", f"{playbook.station_name}上游", own))
    return tasks


def departments_for(network: RiverNetwork, playbook: Playbook) -> list[DepartmentContact]:
    """Everyone to reach: the alerting city first, then the cities downstream, then source cities."""
    cities = [
        playbook.station_city,
        *(r.city for r in playbook.receptors),
        *(s.city for s in playbook.suspected_sources),
    ]
    return [
        DepartmentContact(name=d.name, city=d.city, role=d.role, apprise_tags=d.apprise_tags)
        for city in dict.fromkeys(c for c in cities if c)
        for d in network.departments_of(city)
    ]


def _departments(network: RiverNetwork, city: str, *roles: Role) -> list[Department]:
    return network.departments_of(city, *roles) or network.departments_of(city)


def _interception_point(receptors: list[ReceptorArrival], card: Treatment) -> ReceptorArrival | None:
    for receptor in receptors:
        if receptor.kind == "interception" and any(c in receptor.capabilities for c in card.capabilities):
            return receptor
    return None


def _depot(depots: tuple[Depot, ...], materials: tuple[str, ...], river_km: float) -> Depot | None:
    """The depot holding the materials, preferring the nearest one at or above the target."""
    stocked = [d for d in depots if set(d.materials) & set(materials)]
    if not stocked:
        return None
    return min(stocked, key=lambda d: (d.river_km > river_km, abs(d.river_km - river_km)))


def _deadline(receptor: ReceptorArrival, at: datetime) -> datetime:
    return max(at, receptor.leading_edge_fast_at - SAFETY_MARGIN)
