"""Krippendorff's alpha (nominal) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assay.errors import InvalidInput
from assay.quality.agreement import coincidence_matrix, krippendorff_alpha


def _long(matrix):
    """Reliability data (observers x units, None = missing) to long codes."""
    items, workers, labels = [], [], []
    for w, row in enumerate(matrix):
        for u, v in enumerate(row):
            if v is not None:
                items.append(u)
                workers.append(w)
                labels.append(v)
    return np.array(items), np.array(workers), np.array(labels)


def test_two_coders_by_hand():
    # units (a,a), (a,b), (b,b): o_aa = 2, o_ab = o_ba = 1, o_bb = 2; n_a = n_b = 3, n = 6
    # alpha = 1 - (n-1) * 2 / (n^2 - n_a^2 - n_b^2) = 1 - 5 * 2 / 18 = 4/9
    items, workers, labels = [0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1], [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(coincidence_matrix(items, workers, labels), [[2, 1], [1, 2]])
    assert krippendorff_alpha(items, workers, labels) == pytest.approx(4 / 9)


def test_krippendorff_2011_nominal_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C:
    # 4 observers, 12 units, missing values; classes 1..5 coded 0..4.
    # Unit 12 has one value only and is not pairable; n = 40 pairable values.
    # By hand: n_c = (9, 13, 10, 5, 3) (count each class over units 1-11).
    N = None
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
        [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
    ]
    coded = [[v - 1 if v is not None else None for v in row] for row in data]
    items, workers, labels = _long(coded)
    o = coincidence_matrix(items, workers, labels)
    nc = o.sum(axis=1)
    np.testing.assert_allclose(nc, [9, 13, 10, 5, 3])
    # Ordered pairs of different values, each weighted 1 / (m_u - 1):
    #   unit 2 (2,3,2,2): 3 * 1 * 2 = 6 pairs / 3 = 2
    #   unit 6 (1,2,3,4): 4 * 3 = 12 pairs / 3 = 4
    #   unit 8 (1,2,1,1): 6 pairs / 3 = 2
    # total 8 -> alpha = 1 - (n - 1) * 8 / (n^2 - sum n_c^2) = 1 - 39 * 8 / (1600 - 384)
    assert o.sum() - np.trace(o) == pytest.approx(8)
    alpha = krippendorff_alpha(items, workers, labels)
    assert alpha == pytest.approx(1 - 312 / 1216)
    assert round(alpha, 3) == 0.743  # the value the paper reports


def test_perfect_and_chance():
    items = np.repeat(np.arange(50), 3)
    workers = np.tile(np.arange(3), 50)
    labels = np.repeat(np.arange(50) % 3, 3)
    assert krippendorff_alpha(items, workers, labels) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 3, items.size)
    assert abs(krippendorff_alpha(items, workers, noise)) < 0.1


def test_undefined_is_nan():
    # no item has two answers: nothing pairable
    assert math.isnan(krippendorff_alpha([0, 1, 2], [0, 0, 1], [0, 1, 0]))
    # no answers at all
    assert math.isnan(krippendorff_alpha([], [], []))
    # every pairable value is the same class: no variation, D_e = 0
    assert math.isnan(krippendorff_alpha([0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 1, 1], n_classes=3))


def test_duplicates_keep_last_and_bad_input():
    # worker 0 answered item 0 twice: the later answer (1) counts
    a = krippendorff_alpha([0, 0, 0, 1, 1], [0, 1, 0, 0, 1], [0, 1, 1, 0, 0])
    assert a == pytest.approx(1.0)
    with pytest.raises(InvalidInput):
        krippendorff_alpha([0, 1], [0], [0, 1])
    with pytest.raises(InvalidInput):
        krippendorff_alpha([0, 0], [0, 1], [0, 3], n_classes=2)
