"""The constraint rows of a MILP, collected one at a time as sparse entries (the blocking and the assignment
cores build theirs this way). Plain numpy/scipy: no Django, like the cores that use it."""

from __future__ import annotations

import scipy.sparse as sp
from scipy.optimize import LinearConstraint


class SparseRows:
    """Rows ``lo <= sum(val * x[col]) <= hi``, added with ``add``; ``constraint`` makes them one scipy constraint."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []

    @property
    def count(self) -> int:
        return len(self.lower)

    def add(self, entries: list[tuple[int, float]], lo: float, hi: float) -> None:
        row = self.count
        for col, val in entries:
            self.rows.append(row)
            self.cols.append(col)
            self.vals.append(val)
        self.lower.append(lo)
        self.upper.append(hi)

    def constraint(self, n_cols: int) -> LinearConstraint:
        matrix = sp.csr_matrix((self.vals, (self.rows, self.cols)), shape=(self.count, n_cols))
        return LinearConstraint(matrix, self.lower, self.upper)
