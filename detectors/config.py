"""Tuning of the detector stack, one frozen object shared by every station detector.

Numbers are counted in readings, not seconds, because stations report at very different
rates (one a minute on a test rig, one every four hours at a national automatic station) and
the statistics that matter — how many readings a baseline needs, how many in a row make an
event — are about evidence, not wall time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Persistence:
    """Event logic: open when ``k`` of the last ``n`` readings fire, close after ``close_after``
    readings in a row below the (lower) hold threshold."""

    k: int = 3
    n: int = 5
    close_after: int = 5

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n <= 64:
            raise ValueError(f"persistence needs 1 <= k <= n <= 64, got k={self.k} n={self.n}")
        if self.close_after < 1:
            raise ValueError(f"persistence close_after must be >= 1, got {self.close_after}")


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Everything a :class:`~detectors.station.StationDetector` can be tuned with."""

    #: Readings a parameter must have before its spike score counts (regulatory limits fire at once).
    warmup_readings: int = 60
    #: Smoothing of the baseline level after warm-up (about 1/alpha readings of memory).
    level_alpha: float = 0.01
    #: Smoothing of the noise scale; slower than the level so a plume does not become "normal".
    scale_alpha: float = 0.003
    #: Deviations are clipped at this many scales before they update a baseline (Huber-style).
    clip: float = 3.0
    #: Per-parameter scores are divided by their usual 95th percentile, never by less than this
    #: (about that percentile for Gaussian noise in these units), so one scale fits every signal.
    tail_floor: float = 2.0
    #: Deviations (and changes) beyond this many times the usual large one are events, not part of
    #: what is usual: they do not update the percentile.
    tail_learn_below: float = 4.0
    #: ... and the level follows them at this fraction of level_alpha.
    event_learning: float = 0.1
    #: Combined spike score that fires the persistence window, and the lower score that holds it open.
    spike_threshold: float = 3.0
    hold_ratio: float = 0.6
    spike_persistence: Persistence = field(default_factory=Persistence)
    #: A station downstream of one that reported pollution in some parameters multiplies its spike
    #: score by upstream_boost while those parameters rise, for upstream_window_s after the report
    #: (48 h: the Jialing's reservoirs move water ~0.2 m/s, ~35 km a day, DESIGN.md §4).
    upstream_boost: float = 1.4
    upstream_window_s: float = 48 * 3600.0
    #: Operator verdicts about the last feedback_memory_s of a station weigh its pollution evidence
    #: (see detectors.feedback).
    feedback_memory_s: float = 90 * 86400.0
    #: Weight of the multivariate HalfSpaceTrees score in the combined score.
    hst_weight: float = 1.0
    hst_trees: int = 10
    hst_height: int = 6
    hst_window: int = 250
    #: Joint states with a per-parameter score above this are not taught to the trees as normal.
    hst_learn_below: float = 3.0
    #: Regulatory checks (limit, class, ecological flow) need no warm-up and little persistence:
    #: two of three readings, so a one-reading instrument glitch is not reported as an exceedance;
    #: closed after five readings no longer within 10 % of the limit.
    limit_persistence: Persistence = field(default_factory=lambda: Persistence(k=2, n=3, close_after=5))
    #: Instrument problems open at once and close after a few clean readings.
    fault_persistence: Persistence = field(default_factory=lambda: Persistence(k=1, n=1, close_after=3))
    #: Instrument faults of a spike (one reading) open at once and close at the next clean reading.
    transient_persistence: Persistence = field(default_factory=lambda: Persistence(k=1, n=1, close_after=1))
    #: An open shape-based fault (level shift, high variability, drift) holds while its strength
    #: stays above this fraction of the firing strength.
    fault_hold_ratio: float = 0.7
    #: A change of this many usual changes in another parameter at the same reading makes a change
    #: not lone (a plume moves several parameters; the sensor one).
    related_jump: float = 3.0
    #: ... or one this far beyond its usual large deviation (its 95th percentile: with ten parameters
    #: one of them is beyond it every other reading by chance).
    related_surprise: float = 2.0
    #: A water level this many noise units above its baseline is high water: a flood (the usual
    #: 3-sigma outlier bound; on both oddwater training records base flow stays within 2 and floods
    #: reach 5-250). Turbidity and conductivity are then read as the flood's (detectors.flood).
    flood_z: float = 3.0
    #: A lone spike: a change of spike_jump times the parameter's large changes (99th percentile)
    #: to a value spike_surprise times its usual large deviation from the baseline.
    spike_jump: float = 2.0
    spike_surprise: float = 3.0
    #: A lone jump of shift_jump times the parameter's large changes that the next
    #: shift_confirm_readings readings keep (together, nearer the new level than the old) is a level
    #: shift; it stays open while the value stays nearer the new level, until maintenance, or for at
    #: most shift_hold_readings readings.
    shift_jump: float = 2.0
    #: ... to a value at least shift_scales noise units from the baseline (a step of one digit of a
    #: coarsely quantised signal is not an offset).
    shift_scales: float = 4.0
    shift_confirm_readings: int = 3
    shift_hold_readings: int = 720
    #: Multiplies how readily every shape-based instrument check fires (their thresholds are divided
    #: by it); calibration from labelled history picks it when faults count.
    fault_sensitivity: float = 1.0
    #: Drift: block means (drift_block readings) of the deviation from the baseline feed river's
    #: Page-Hinkley test (drift_delta, drift_threshold, after drift_min_blocks blocks, in noise
    #: units); an open drift holds while the block means stay drift_hold noise units to one side.
    drift_block: int = 10
    drift_delta: float = 0.5
    drift_threshold: float = 50.0
    drift_min_blocks: int = 10
    drift_hold: float = 3.0
    #: ... and only once the block means have kept one side this long (reading time): a diurnal
    #: cycle the baseline has not learned yet (a station's first day) flips side within 12 h, a
    #: failing sensor does not.
    drift_min_span_s: float = 18 * 3600.0
    #: High variability: recent changes (an EWM with this alpha) this many times the usual change.
    variability_alpha: float = 0.1
    variability_ratio: float = 3.0
    #: A value repeated this improbably often (given how often it used to change) is a stuck sensor.
    stuck_min_readings: int = 10
    stuck_min_change_rate: float = 0.2
    stuck_log_probability: float = -30.0
    #: A pause longer than this many typical intervals (and at least gap_min_s) is a data gap.
    gap_intervals: float = 5.0
    gap_min_s: float = 600.0
    #: A station still silent while its partition's event time (the latest reading of any station
    #: there) has moved on by more than this many typical intervals, and at least silence_min_s,
    #: gets its data-gap onset while the gap is open, not only when it ends.
    silence_intervals: float = 3.0
    silence_min_s: float = 900.0
    #: How far event time must advance between two silence checks of a partition.
    silence_check_s: float = 5.0
    #: Open events emit an update at most this often (in readings) unless the score grows by update_growth.
    update_every: int = 60
    update_growth: float = 1.5
    #: Readings attached to a detection (bounded, the ones that triggered it).
    evidence_readings: int = 3
    seed: int = 42

    def __post_init__(self) -> None:
        if self.evidence_readings < 1:
            raise ValueError(
                f"evidence_readings must be >= 1 (a detection carries its reading), got {self.evidence_readings}"
            )
        if self.silence_check_s < 0:
            raise ValueError(f"silence_check_s must be >= 0, got {self.silence_check_s}")
