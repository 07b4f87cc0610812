"""HistGradientBoosting's raw scores without scikit-learn's per-call overhead.

``_raw_predict`` first runs the model's own ColumnTransformer (``_preprocessor``: an
OrdinalEncoder over the categorical columns, moved first, and ``check_array`` over the rest),
then calls one Cython predictor per tree. Both are replaced here, with the same arithmetic:

- the model's encoder as a ``searchsorted`` lookup (:func:`hist_encoder`);
- the trees as **leaf tables** (:class:`LeafTables`), QuickScorer's bit vectors (Lucchese et
  al., SIGIR 2015) turned into lookups: every node's test is a function of one feature, so for
  each feature and each value *class* (numeric: how many of the feature's split thresholds lie
  below the value, or missing; categorical: the category's code, or missing) the leaves every
  tree can still reach are one bit mask per tree, computed at load time. A row's masks for its
  features, ANDed, leave exactly the leaves consistent with every test the row passes or fails;
  the exit leaf is the leftmost of them (the lowest set bit). Scoring ``n`` rows is then a
  ``searchsorted`` per feature and a few numpy operations on ``n x features x trees`` masks,
  whatever the trees' depth; the leaf values are added in scikit-learn's order (zeros, then the
  baseline, then each tree of each iteration in turn), so the sums are the same bits.

Measured on the bench's model (the demo's table, 100 iterations of up to 31 leaves), us per
call of the estimator's entry on one CPU, the two alternating, best of 7, at 1 / 8 / 16 / 64 /
256 rows: what this replaces (all trees walked level by level in numpy up to 8 rows, then
scikit-learn's predictors) 250 / 384 / 457 / 583 / 1,499; leaf tables 28 / 34 / 40 / 79 / 229.

The tables need a tree to have at most 64 leaves (one ``uint64`` mask) and the tables to fit
:data:`TABLE_BYTES`; a model outside those limits, and a batch too large for
:data:`TABLE_GATHER_BYTES`, is scored by the model's own predictors (``_predict_iterations``
from the same baseline: what ``_raw_predict`` runs, so the same bits by construction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.preprocessing import OrdinalEncoder
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

Raw = Callable[[np.ndarray], np.ndarray]

# The leaf tables score a batch while its rows' masks (rows x features x trees, 8 bytes each)
# fit in this many bytes: 2,621 rows of the bench's model (4 features, 100 trees), 52 of 20
# features x 1,000 trees; a larger batch goes to the model's predictors (one Cython call per
# tree, about 4.5 us each, plus the walk). On the bench's model, us per call of the entry, one
# CPU: 256 rows 1,499 predictors against 229 tables; 1,024 rows 4,293 against 864.
TABLE_GATHER_BYTES = 8 * 2**20
TABLE_BYTES = 64 * 2**20  # the tables themselves, every feature's; beyond it, predictors only
SINGLE_THREAD_ROWS = 256  # predictors: up to this many rows, one OpenMP thread (no fork/join)
MASK_BITS = 64
CATEGORY_CODES = 256  # a categorical node reads the value as uint8 (<X_BINNED_DTYPE_C>)
ALL = np.uint64(2**64 - 1)


def hist_raw(model: Any) -> Raw:
    """``model._raw_predict`` of the pipeline's matrix: [row, output], as scikit-learn's."""
    encode = hist_encoder(model)
    predictors, baseline = model._predictors, model._baseline_prediction
    width = int(model.n_trees_per_iteration_)
    tables = LeafTables.of(model)

    def raw(matrix: np.ndarray) -> np.ndarray:
        rows = encode(matrix)
        if tables is not None and rows.shape[0] <= tables.max_rows:
            return tables.raw(rows)
        out = np.zeros((rows.shape[0], width), dtype=baseline.dtype, order="F")
        out += baseline
        threads = 1 if rows.shape[0] <= SINGLE_THREAD_ROWS else _openmp_effective_n_threads()
        model._predict_iterations(rows, predictors, out, False, threads)
        return out

    return raw


# ---------------------------------------------------------------- the model's own encoder


def hist_encoder(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The model's own ``_preprocessor.transform`` as array operations (identity without one)."""
    pre = model._preprocessor
    if pre is None:
        return lambda matrix: matrix  # its validate_data: float64 stays as it is
    encoder = pre.named_transformers_["encoder"]
    if type(encoder) is not OrdinalEncoder or encoder.handle_unknown != "use_encoded_value":
        raise LookupError("a HistGradientBoosting categorical encoder of another kind")
    categorical = np.flatnonzero(model.is_categorical_)
    numeric = np.flatnonzero(~np.asarray(model.is_categorical_))
    places = pre.output_indices_
    known = [np.asarray(values, dtype=np.float64) for values in encoder.categories_]
    known = [values[~np.isnan(values)] for values in known]  # sorted; NaN (missing) was last
    if any(len(values) == 0 for values in known):
        raise LookupError("a HistGradientBoosting categorical column without categories")

    def encode(matrix: np.ndarray) -> np.ndarray:
        out = np.empty(matrix.shape, dtype=np.float64)
        codes = out[:, places["encoder"]]  # a view: a slice of the output's columns
        for j, (column, values) in enumerate(zip(categorical, known, strict=True)):
            seen = matrix[:, column]
            at = np.minimum(np.searchsorted(values, seen), len(values) - 1)
            codes[:, j] = np.where(values[at] == seen, at, np.nan)  # unknown, missing: NaN
        out[:, places["numerical"]] = matrix[:, numeric]
        return out

    return encode


# ---------------------------------------------------------------- leaf tables


@dataclass(frozen=True)
class Trees:
    """Every tree of the model in one node table (iteration-major), with each node's mask:
    every leaf of its tree but those of its left subtree (bit ``i``: the tree's ``i``-th leaf
    from the left), and where each tree's leaves are in the leaf-value table."""

    tree: np.ndarray  # node -> its tree
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    internal: np.ndarray  # not a leaf
    categorical: np.ndarray
    right_mask: np.ndarray  # uint64: the leaves still reachable when the node sends right
    left_bitset: np.ndarray  # [node, 8] uint32: the categories a categorical node sends left
    leaf_values: np.ndarray  # [tree, MASK_BITS] float64, leaves left to right

    @classmethod
    def of(cls, model: Any) -> Trees | None:
        """None when a tree has more leaves than a mask has bits."""
        trees = [tree for iteration in model._predictors for tree in iteration]
        masks, values = [], np.zeros((len(trees), MASK_BITS))
        for t, tree in enumerate(trees):
            leaves = _leaves_in_order(tree.nodes)
            if len(leaves) > MASK_BITS:
                return None
            values[t, : len(leaves)] = tree.nodes["value"][leaves]
            masks.append(_right_masks(tree.nodes, leaves))
        nodes = np.concatenate([tree.nodes for tree in trees])
        return cls(
            tree=np.repeat(np.arange(len(trees)), [len(tree.nodes) for tree in trees]),
            feature=nodes["feature_idx"].astype(np.intp),
            threshold=nodes["num_threshold"].astype(np.float64),
            missing_left=nodes["missing_go_to_left"].astype(bool),
            internal=~nodes["is_leaf"].astype(bool),
            categorical=nodes["is_categorical"].astype(bool),
            right_mask=np.concatenate(masks),
            left_bitset=np.concatenate([_node_bitsets(tree) for tree in trees]),
            leaf_values=values,
        )


def _leaves_in_order(nodes: np.ndarray) -> list[int]:
    """The tree's leaves from left to right."""
    return [node for node in _preorder(nodes) if nodes["is_leaf"][node]]


def _right_masks(nodes: np.ndarray, leaves: list[int]) -> np.ndarray:
    """Per node, every leaf's bit but those of the leaves under its left child."""
    position = {leaf: i for i, leaf in enumerate(leaves)}
    under = np.zeros(len(nodes), dtype=np.uint64)  # bits of the leaves under each node
    for node in reversed(_preorder(nodes)):  # children before their parent
        if nodes["is_leaf"][node]:
            under[node] = np.uint64(1) << np.uint64(position[node])
        else:
            under[node] = under[nodes["left"][node]] | under[nodes["right"][node]]
    masks = np.full(len(nodes), ALL, dtype=np.uint64)
    internal = np.flatnonzero(~nodes["is_leaf"].astype(bool))
    masks[internal] = ~under[nodes["left"][internal]]
    return masks


def _preorder(nodes: np.ndarray) -> list[int]:
    """Node 0 (the root), then its left subtree, then its right one: leaves left to right."""
    order, stack = [], [0]
    while stack:
        node = stack.pop()
        order.append(node)
        if not nodes["is_leaf"][node]:
            stack += [int(nodes["right"][node]), int(nodes["left"][node])]  # left popped first
    return order


def _node_bitsets(tree: Any) -> np.ndarray:
    """Each node's row of the tree's ``raw_left_cat_bitsets`` (zeros for a numeric node)."""
    bitsets = np.asarray(tree.raw_left_cat_bitsets, dtype=np.uint32).reshape(-1, 8)
    out = np.zeros((len(tree.nodes), 8), dtype=np.uint32)
    categorical = np.flatnonzero(tree.nodes["is_categorical"].astype(bool))
    out[categorical] = bitsets[tree.nodes["bitset_idx"][categorical]]
    return out


@dataclass(frozen=True)
class Feature:
    """One feature the trees split on, and its rows of ``LeafTables.masks``."""

    column: int
    offset: int  # its first row in the masks table
    thresholds: np.ndarray | None  # numeric: the sorted distinct thresholds; categorical: None
    known: np.ndarray | None = None  # categorical: which of the 256 codes the model knows

    @property
    def missing(self) -> int:
        """The row (from ``offset``) of a missing value: after every rank, or every code."""
        return CATEGORY_CODES if self.thresholds is None else len(self.thresholds) + 1


@dataclass(frozen=True)
class LeafTables:
    """For each feature value class, the leaves each tree can still reach: the module doc.

    Trees are kept output-major (every tree of output 0 in iteration order, then output 1...),
    so each output's leaf values are one contiguous run to add up.
    """

    columns: np.ndarray  # the encoded columns the trees split on
    numeric: tuple[tuple[int, np.ndarray], ...]  # (position in columns, sorted thresholds)
    categorical: np.ndarray  # positions in columns of the categorical ones
    offsets: np.ndarray  # each column's first row of masks
    missing: np.ndarray  # each column's row of masks for a missing value
    masks: np.ndarray  # [value class, tree] uint64
    leaf_index: np.ndarray  # tree -> its first leaf in leaf_values, minus one
    leaf_values: np.ndarray  # [tree * MASK_BITS] float64, leaves left to right
    start: np.ndarray  # [1, output, 1]: 0.0 + the baseline (the first step of the sum)

    @property
    def max_rows(self) -> int:
        """The largest batch these tables score (:data:`TABLE_GATHER_BYTES`), at least one."""
        per_row = max(1, len(self.columns)) * len(self.leaf_index) * 8
        return max(1, TABLE_GATHER_BYTES // per_row)

    @classmethod
    def of(cls, model: Any) -> LeafTables | None:
        """None when a tree has over 64 leaves or the tables would exceed TABLE_BYTES."""
        trees = Trees.of(model)
        if trees is None:
            return None
        n_trees = trees.leaf_values.shape[0]
        used = np.unique(trees.feature[trees.internal])
        sizes = [_classes(trees, int(f)) for f in used]
        if sum(sizes) * n_trees * 8 > TABLE_BYTES:
            return None
        offsets, known = np.cumsum([0, *sizes])[:-1], known_categories(model)
        features = [
            _feature(trees, int(f), int(o), known) for f, o in zip(used, offsets, strict=True)
        ]
        masks = np.full((sum(sizes), n_trees), ALL, dtype=np.uint64)
        for feature in features:
            _fill(masks, trees, feature)
        width = int(model.n_trees_per_iteration_)
        order = np.arange(n_trees).reshape(-1, width).T.ravel()  # output-major
        baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
        return cls(
            columns=used.astype(np.intp),
            numeric=tuple((j, f.thresholds) for j, f in enumerate(features)
                          if f.thresholds is not None),
            categorical=np.array([j for j, f in enumerate(features) if f.thresholds is None],
                                 dtype=np.intp),
            offsets=offsets.astype(np.intp),
            missing=np.array([f.offset + f.missing for f in features], dtype=np.intp),
            masks=np.ascontiguousarray(masks[:, order]),
            leaf_index=np.arange(n_trees, dtype=np.intp) * MASK_BITS - 1,
            leaf_values=np.ascontiguousarray(trees.leaf_values[order]).ravel(),
            start=(0.0 + baseline).reshape(1, width, 1),
        )  # fmt: skip

    def raw(self, rows: np.ndarray) -> np.ndarray:
        """``_raw_predict`` of the encoded ``rows``: [row, output], Fortran-ordered."""
        n, (_, width, _) = rows.shape[0], self.start.shape
        reachable = self._reachable(rows)  # [row, tree]
        exit_leaf = np.bitwise_count(reachable ^ (reachable - np.uint64(1))) + self.leaf_index
        steps = np.empty((n, width, len(self.leaf_index) // width + 1), dtype=np.float64)
        steps[:, :, :1] = self.start
        steps[:, :, 1:] = self.leaf_values.take(exit_leaf).reshape(n, width, -1)
        # cumsum adds strictly in order (np.sum would pair): zeros, baseline, each tree in turn
        return np.asfortranarray(np.cumsum(steps, axis=2)[:, :, -1])

    def _reachable(self, rows: np.ndarray) -> np.ndarray:
        """[row, tree]: the leaves every test of each tree leaves the row (bit masks)."""
        if not len(self.columns):  # every tree is one leaf
            return np.full((rows.shape[0], len(self.leaf_index)), ALL, dtype=np.uint64)
        at = self._classes(rows[:, self.columns])
        return np.bitwise_and.reduce(self.masks.take(at, axis=0), axis=1)  # type: ignore[no-any-return]

    def _classes(self, values: np.ndarray) -> np.ndarray:
        """[row, column]: each value's row of masks (its class), as the Cython reads it."""
        missing = np.isnan(values)
        at = np.empty(values.shape, dtype=np.intp)
        for j, thresholds in self.numeric:  # how many thresholds lie below: nodes sending right
            at[:, j] = thresholds.searchsorted(values[:, j])
        if len(self.categorical):  # a negative code is missing; else its uint8 cast
            codes = values[:, self.categorical]
            gone = missing[:, self.categorical] | (codes < 0)
            missing[:, self.categorical] = gone
            codes = np.where(gone, 0.0, codes).astype(np.intp) & (CATEGORY_CODES - 1)
            at[:, self.categorical] = codes
        at += self.offsets
        np.copyto(at, self.missing, where=missing)
        return at


def _classes(trees: Trees, feature: int) -> int:
    """How many value classes the feature has: threshold ranks and missing, or codes and it."""
    on = trees.internal & (trees.feature == feature)
    if trees.categorical[on].any():
        return CATEGORY_CODES + 1
    return len(np.unique(trees.threshold[on])) + 2


def _feature(trees: Trees, feature: int, offset: int, known: dict[int, np.ndarray]) -> Feature:
    on = trees.internal & (trees.feature == feature)
    if trees.categorical[on].any():
        return Feature(feature, offset, None, known[feature])
    return Feature(feature, offset, np.unique(trees.threshold[on]))


def _fill(masks: np.ndarray, trees: Trees, feature: Feature) -> None:
    """Each value class's rows: AND of the masks of the feature's nodes that send it right."""
    on = np.flatnonzero(trees.internal & (trees.feature == feature.column))
    right = _sends_right(trees, on, feature)  # [value class, node of the feature]
    block = masks[feature.offset : feature.offset + feature.missing + 1]
    classes, nodes = np.nonzero(right)
    np.bitwise_and.at(block, (classes, trees.tree[on][nodes]), trees.right_mask[on][nodes])


def _sends_right(trees: Trees, on: np.ndarray, feature: Feature) -> np.ndarray:
    """[value class, node]: whether the node sends a value of that class right, as
    ``_predict_one_from_raw_data`` decides (scikit-learn's ``_predictor.pyx``)."""
    missing_right = ~trees.missing_left[on]
    if feature.thresholds is None:
        codes = np.arange(CATEGORY_CODES)
        word, bit = codes >> 5, (codes & 31).astype(np.uint32)
        in_left = (trees.left_bitset[on][:, word] >> bit) & 1 == 1  # [node, code]
        assert feature.known is not None  # a categorical feature's
        right = ~in_left & (feature.known[None, :] | missing_right[:, None])
        return np.vstack([right.T, missing_right])  # codes, then missing
    ranks = np.searchsorted(feature.thresholds, trees.threshold[on])  # the node's threshold
    below = np.arange(len(feature.thresholds) + 1)[:, None] > ranks  # value above threshold
    return np.vstack([below, missing_right])


def known_categories(model: Any) -> dict[int, np.ndarray]:
    """Each categorical feature's known codes (bool[256]), from the model's own bitsets; by
    the trees' feature numbering (the encoded columns: the categorical ones first)."""
    bitsets, row_of = model._bin_mapper.make_known_categories_bitsets()
    bitsets = np.asarray(bitsets, dtype=np.uint32).reshape(-1, 8)
    codes = np.arange(CATEGORY_CODES)
    word, bit = codes >> 5, (codes & 31).astype(np.uint32)
    return {
        int(f): (bitsets[int(row_of[f]), word] >> bit) & 1 == 1
        for f in np.flatnonzero(model._bin_mapper.is_categorical_)
    }
