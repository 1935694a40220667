"""The feature plan: a model's encoded inputs -> the features its estimator sees.

A :class:`FeaturePlan` lists, for each feature, how it is made from the columns of the
encoded inputs E (the schema's encoding: numbers, 0/1, category codes): a copy of an
input column, one category's one-hot column, or the product or sum of earlier features
(the interaction features). The C core computes it (``csrc/plan.c``), once for every
consumer: :meth:`propensity.schema.Schema.expand` is a schema's plan (copies and
one-hot columns), :meth:`InteractionFeatureTransformer.transform` a transformer's
(copies, products, sums), and a tree model scores E through the two composed
(:meth:`then`) and its bin edges, straight from E to the bin codes its trees walk,
without the matrices of features in between (``_core.trees_score_inputs``).

Values are computed in double, in the order NumPy would compute them, so they are the
same bits as the float64 (or small-integer uint8) arithmetic the features are defined by.
"""
import numpy as np

from .._core_loader import _core

COPY, ONEHOT, PROD, SUM = 0, 1, 2, 3
_OPS = {COPY, ONEHOT, PROD, SUM}


class FeaturePlan:
    """Steps ``(op, col, level, sources)`` over ``n_inputs`` input columns, one per
    feature: COPY reads input ``col``; ONEHOT is 1 where input ``col`` equals ``level``
    (a category code); PROD / SUM fold the earlier features ``sources`` left to right."""

    def __init__(self, n_inputs, steps):
        self.n_inputs = int(n_inputs)
        self.steps = [(int(op), int(col), float(level), tuple(int(s) for s in sources))
                      for op, col, level, sources in steps]
        for f, (op, col, _, sources) in enumerate(self.steps):
            if op not in _OPS:
                raise ValueError(f"feature plan: step {f} has an unknown op {op}")
            if op in (COPY, ONEHOT) and not 0 <= col < self.n_inputs:
                raise ValueError(f"feature plan: step {f} reads input {col} of {self.n_inputs}")
            if op in (PROD, SUM) and (not sources or not all(0 <= s < f for s in sources)):
                raise ValueError(f"feature plan: step {f} needs sources among the earlier "
                                 f"features")
        self._arrays = None

    @property
    def n_features(self):
        return len(self.steps)

    @classmethod
    def copies(cls, n_inputs):
        """The plan that passes ``n_inputs`` columns through."""
        return cls(n_inputs, [(COPY, j, 0.0, ()) for j in range(n_inputs)])

    def then(self, outer):
        """The plan of ``outer`` applied to this plan's features: outer's copies of its
        inputs become this plan's steps, its products and sums keep their sources."""
        if outer.n_inputs != self.n_features:
            raise ValueError(f"feature plan: the outer plan reads {outer.n_inputs} inputs, "
                             f"this one makes {self.n_features} features")
        steps = []
        for op, col, level, sources in outer.steps:
            if op == COPY:
                steps.append(self.steps[col])
            elif op == ONEHOT:
                raise ValueError("feature plan: an outer one-hot step cannot be composed")
            else:
                steps.append((op, col, level, sources))
        if any(op in (PROD, SUM) for op, *_ in self.steps) and \
                outer.steps[:self.n_features] != FeaturePlan.copies(self.n_features).steps:
            # this plan's sources name its own feature positions: they must stay put
            raise ValueError("feature plan: composing over products and sums needs the outer "
                             "plan to copy every input first, in order")
        return FeaturePlan(self.n_inputs, steps)

    @property
    def arrays(self):
        """The plan as the C core takes it: (op, col, level, src_start, src)."""
        if self._arrays is None:
            F = self.n_features
            op = np.array([s[0] for s in self.steps], dtype=np.int32)
            col = np.array([s[1] if s[0] in (COPY, ONEHOT) else 0 for s in self.steps],
                           dtype=np.int64)
            level = np.array([s[2] for s in self.steps], dtype=np.float64)
            src_start = np.zeros(F + 1, dtype=np.int64)
            np.cumsum([len(s[3]) for s in self.steps], out=src_start[1:])
            src = np.array([x for s in self.steps for x in s[3]], dtype=np.int64)
            self._arrays = (op, col, level, src_start, src)
        return self._arrays

    def check_inputs(self, E):
        """E itself when it is a 2-D array of this plan's input columns (ValueError if not)."""
        if getattr(E, "ndim", 0) != 2 or E.shape[1] != self.n_inputs:
            raise ValueError(f"the inputs have shape {getattr(E, 'shape', None)}; the feature "
                             f"plan reads {self.n_inputs} columns")
        return E

    def values(self, E, out_u8=False, n_jobs=0):
        """The features of the rows of E (2-D float64, float32 or uint8): float64, or
        uint8 with ``out_u8`` (for features that are small non-negative integers)."""
        return _core.plan_values(self.check_inputs(E), self.arrays, bool(out_u8), int(n_jobs))

    def codes(self, E, mapper, n_jobs=0):
        """The bin codes (uint8) of the features of E under a fitted BinMapper."""
        return _core.plan_codes(self.check_inputs(E), self.arrays, mapper.edges_,
                                mapper.n_edges_, int(n_jobs))

    def __eq__(self, other):
        return isinstance(other, FeaturePlan) and (self.n_inputs, self.steps) == \
            (other.n_inputs, other.steps)

    def __repr__(self):
        return f"FeaturePlan({self.n_inputs} inputs -> {self.n_features} features)"
