"""Pollution-spike scoring of one station: per-parameter surprise combined into one score.

A sum rather than the maximum: a spill usually moves several parameters a little (pH,
conductivity, turbidity together), noise usually one a lot. The combined score is raised by
how isolated the joint state is in a per-station river ``HalfSpaceTrees``.

Evidence about the water is either coherent — two or more parameters beyond their usual range in
the same reading — or sustained: a parameter beyond it in two readings running. One parameter
that leaves its range for one reading is how a sensor glitches, so alone it scores only as far as
its previous reading agreed.

>>> from detectors.config import DetectorConfig
>>> scorer = SpikeScorer(DetectorConfig(hst_weight=0))
>>> scorer.score({"NH3N": 0.4, "pH": 0.3}), scorer.score({"NH3N": 6.5, "pH": 0.3})
(0.0, 0.0)
>>> scorer.score({"NH3N": 5.5, "pH": 0.3}), round(scorer.score({"NH3N": 3.5, "DO": 2.5}), 3)
(5.0, 3.606)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from river.anomaly import HalfSpaceTrees
from river.tree.padded import PaddedBranch, PaddedLeaf

from detectors.config import DetectorConfig
from detectors.state import ForestState, SpikeState, TreeState


class SpikeScorer:
    """The spike score of a reading from how surprising each eligible parameter is."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.hst: HalfSpaceTrees | None = None
        self.hst_features: frozenset[str] = frozenset()
        #: Each parameter's surprise in the previous reading (absent: it was not evidence then).
        self.previous: dict[str, float] = {}

    def score(self, eligible: dict[str, float]) -> float:
        """Root-sum-square of how far each parameter is beyond half its usual range (coherent or
        sustained, see the module), raised by how isolated the joint state is (HST). Only the excess
        counts, so the score does not grow with how many parameters a station happens to measure."""
        previous = self.previous
        self.previous = eligible
        if not eligible:
            return 0.0
        config = self.config
        if sum(1 for s in eligible.values() if s >= 1.0) >= 2:
            single = math.sqrt(sum((s - 0.5) ** 2 for s in eligible.values() if s > 0.5))
        else:
            sustained = (min(s, previous.get(name, 0.0)) for name, s in eligible.items())
            single = math.sqrt(sum((s - 0.5) ** 2 for s in sustained if s > 0.5))
        if config.hst_weight <= 0:
            return single
        features = {name: math.tanh(s / 4.0) for name, s in eligible.items()}
        if self.hst is None or not features.keys() <= self.hst_features:
            # Trees split on the features present when they are built; a new parameter needs new trees.
            self.hst_features = frozenset(features.keys() | self.hst_features)
            self.hst = _forest(config.hst_trees, config.hst_height, config.hst_window, config.seed, self.hst_features)
        isolation = float(self.hst.score_one(features))  # type: ignore[no-untyped-call]
        # Learn only what looks normal, so a long plume does not fill the trees' mass profile. A fixed
        # bar, not the spike threshold, so the scores do not depend on it and calibration is exact.
        if single < config.hst_learn_below:
            self.hst.learn_one(features)  # type: ignore[no-untyped-call]
        return single * (1.0 + config.hst_weight * max(0.0, isolation - 0.5))

    def snapshot(self) -> SpikeState:
        return SpikeState(forest=None if self.hst is None else _forest_state(self.hst),
                          features=sorted(self.hst_features), previous=self.previous)

    @classmethod
    def restore(cls, state: SpikeState, config: DetectorConfig) -> SpikeScorer:
        scorer = cls(config)
        scorer.hst_features = frozenset(state.features)
        scorer.previous = dict(state.previous)
        if state.forest is not None:
            scorer.hst = _forest_from_state(state.forest)
        return scorer


def _forest(n_trees: int, height: int, window: int, seed: int | None, features: frozenset[str]) -> HalfSpaceTrees:
    return HalfSpaceTrees(n_trees=n_trees, height=height, window_size=window, seed=seed,
                          limits=dict.fromkeys(features, (0.0, 1.0)))


def _forest_state(hst: HalfSpaceTrees) -> ForestState:
    """The trees as data: river builds them from its seed at the first ``learn_one``, so the splits
    are written out rather than rebuilt, which keeps restored trees independent of river's RNG use."""
    features = sorted(hst.limits)
    index = {name: i for i, name in enumerate(features)}
    trees = []
    for nodes in hst._tree_nodes:
        splits = [(index[node.feature], float(node.threshold)) for node in nodes if isinstance(node, PaddedBranch)]
        trees.append(TreeState(splits=splits, l_mass=[node.l_mass for node in nodes],
                               r_mass=[node.r_mass for node in nodes]))
    return ForestState(n_trees=hst.n_trees, height=hst.height, window_size=hst.window_size, seed=hst.seed,
                       features=features, counter=hst.counter, first_window=hst._first_window, trees=trees)


def _forest_from_state(state: ForestState) -> HalfSpaceTrees:
    hst = _forest(state.n_trees, state.height, state.window_size, state.seed, frozenset(state.features))
    trees, tree_nodes = [], []
    for tree in state.trees:
        root = _tree(iter(tree.splits), state.features, state.height)
        nodes = list(root.iter_dfs())
        for node, left, right in zip(nodes, tree.l_mass, tree.r_mass, strict=True):
            node.l_mass, node.r_mass = left, right
        trees.append(root)
        tree_nodes.append(nodes)
    hst.trees = trees
    hst._tree_nodes = tree_nodes
    hst.counter = state.counter
    hst._first_window = state.first_window
    return hst


def _tree(splits: Iterator[tuple[int, float]], features: list[str], height: int) -> Any:
    """A complete tree of ``height`` from its branches' splits in depth-first order (untyped in river)."""
    if height == 0:
        return PaddedLeaf(l_mass=0, r_mass=0)  # type: ignore[no-untyped-call]
    feature, threshold = next(splits)
    left = _tree(splits, features, height - 1)
    right = _tree(splits, features, height - 1)
    return PaddedBranch(  # type: ignore[no-untyped-call]
        left=left, right=right, feature=features[feature], threshold=threshold, l_mass=0, r_mass=0
    )
