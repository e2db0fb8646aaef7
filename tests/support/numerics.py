"""Tolerances that follow from the dtype and the reduction order, not from the machine."""

from __future__ import annotations

FLOAT32_EPS = 2.0**-23  # float32's spacing at 1.0: one unit in the last place of v is about FLOAT32_EPS * |v|


def reorder_tolerance(magnitude: float, terms: int) -> float:
    """How far a float32 result may move when the `terms` values summed into it are added in another order
    (another batch shape, packing, padding, kernel or CPU): the classical bound `terms * eps * magnitude`, with
    `magnitude` the sum of the absolute values involved (Higham, Accuracy and Stability of Numerical Algorithms,
    section 4.2). For tests comparing two computations of one float32 quantity, so that the tolerance follows
    from the dtype and the reduction, not from the machine the test was written on.

    >>> reorder_tolerance(100.0, 10) == 10 * 2.0 ** -23 * 100.0
    True
    """
    return terms * FLOAT32_EPS * abs(magnitude)
