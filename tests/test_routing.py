"""Skill-aware routing (assay.quality.routing): the expected information
gain of an annotator's answer and the pick among candidates."""

from __future__ import annotations

import numpy as np
import pytest

from assay.quality import routing


def _entropy(p):
    p = np.asarray(p, dtype=float)
    return float(-(p[p > 0] * np.log(p[p > 0])).sum())


def _symmetric(acc, k):
    c = np.full((k, k), (1 - acc) / (k - 1))
    np.fill_diagonal(c, acc)
    return c


def _mi_brute(p, c):
    """I(A;T) from the joint table, the definition."""
    joint = p[:, None] * c
    pa = joint.sum(axis=0)
    out = 0.0
    for t in range(len(p)):
        for a in range(len(p)):
            if joint[t, a] > 0:
                out += joint[t, a] * np.log(joint[t, a] / (p[t] * pa[a]))
    return out


def test_gain_is_zero_for_a_spammer():
    rng = np.random.default_rng(0)
    post = rng.dirichlet(np.ones(3), size=20)
    row = np.array([0.5, 0.3, 0.2])
    spam = np.tile(row, (3, 1))  # the answer does not depend on the truth
    assert np.allclose(routing.expected_gain(post, spam), 0.0, atol=1e-12)


def test_perfect_annotator_gains_the_whole_entropy():
    rng = np.random.default_rng(1)
    post = rng.dirichlet(np.ones(4), size=30)
    g = routing.expected_gain(post, np.eye(4))
    assert np.allclose(g, [_entropy(p) for p in post])
    # and nobody gains more than the item's entropy
    for acc in (0.3, 0.6, 0.9):
        assert (routing.expected_gain(post, _symmetric(acc, 4)) <= g + 1e-12).all()


def test_matches_the_definition_on_random_confusions():
    rng = np.random.default_rng(2)
    for _ in range(20):
        k = int(rng.integers(2, 6))
        p = rng.dirichlet(np.ones(k))
        c = rng.dirichlet(np.ones(k), size=k)
        assert routing.expected_gain(p[None], c)[0] == pytest.approx(_mi_brute(p, c), abs=1e-12)


def test_monotone_in_accuracy_and_zero_for_a_known_item():
    post = np.array([[0.5, 0.5], [0.8, 0.2], [1.0, 0.0]])
    accs = [0.5, 0.6, 0.7, 0.8, 0.9, 0.99]
    gains = np.array([routing.expected_gain(post, _symmetric(a, 2)) for a in accs])
    assert np.all(np.diff(gains[:, 0]) > 0) and np.all(np.diff(gains[:, 1]) > 0)
    assert np.allclose(gains[0], 0.0)  # coin flipper
    assert np.allclose(gains[:, 2], 0.0)  # item already certain
    # an unsure item is worth more than a nearly settled one, for the same annotator
    assert (gains[1:, 0] > gains[1:, 1]).all()


def test_per_item_confusions_equal_the_shared_one():
    rng = np.random.default_rng(3)
    post = rng.dirichlet(np.ones(3), size=10)
    c = rng.dirichlet(np.ones(3), size=3)
    assert np.allclose(routing.expected_gain(post, np.broadcast_to(c, (10, 3, 3))),
                       routing.expected_gain(post, c))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        routing.expected_gain(np.ones((2, 3)) / 3, np.eye(2))


def test_pick_takes_the_best_first_on_ties_and_random_share():
    rng = np.random.default_rng(4)
    assert routing.pick(np.array([0.1, 0.5, 0.5, 0.2]), rng, 0.0) == 1
    assert routing.pick(np.array([0.3]), rng, 1.0) == 0
    draws = [routing.pick(np.array([0.0, 1.0, 0.0, 0.0]), rng, 1.0) for _ in range(4000)]
    counts = np.bincount(draws, minlength=4)
    assert (counts > 800).all()  # every candidate, about 1,000 times each
    share = np.mean([routing.pick(np.array([0.0, 1.0, 0.0, 0.0]), rng, 0.2) != 1 for _ in range(4000)])
    assert 0.11 < share < 0.19  # 0.2 random, of which 3/4 miss the best
    with pytest.raises(ValueError):
        routing.pick(np.array([]), rng, 0.1)
    with pytest.raises(ValueError):
        routing.pick(np.array([1.0]), rng, 1.5)


# ------------------------------------------------------------ the close table and the default rule

def _exact_left(n, margin, conf, weights, target, max_answers, error_cost):
    """Expected cost to close, by plain recursion over the real margins (no grid)."""
    p1 = 1.0 / (1.0 + np.exp(-margin))
    if max(p1, 1 - p1) >= target or n >= max_answers:
        return error_cost * min(p1, 1 - p1)
    w = np.asarray(weights, dtype=float) / np.sum(weights)
    v = 1.0
    for k in range(len(w)):
        for lab in range(2):
            pl = w[k] * ((1 - p1) * conf[k, 0, lab] + p1 * conf[k, 1, lab])
            step = np.log(conf[k, 1, lab]) - np.log(conf[k, 0, lab])
            v += pl * _exact_left(n + 1, margin + step, conf, weights, target, max_answers, error_cost)
    return v


CROWD = np.array([[[0.9, 0.1], [0.1, 0.9]], [[0.6, 0.4], [0.3, 0.7]], [[0.5, 0.5], [0.5, 0.5]]])


@pytest.mark.parametrize("error_cost", [0.0, 20.0])
def test_close_table_matches_the_recursion(error_cost):
    weights = [3.0, 1.0, 2.0]
    table = routing.close_table(CROWD, weights, 0.95, 3, error_cost=error_cost)
    errors = []
    for margin in np.linspace(-2.6, 2.6, 9):
        for n in range(4):
            want = _exact_left(n, margin, CROWD, weights, 0.95, 3, error_cost)
            got = float(table.lookup(np.array([n]), np.array([margin]))[0])
            errors.append(abs(got - want))
    # the grid (0.05 nats, linear between points) blurs a path that ends within a
    # step of the stop threshold: a few hundredths of an answer there, exact elsewhere
    assert max(errors) < 0.03 and np.median(errors) < 1e-4, errors


def test_close_table_round_trips_and_defaults_its_error_cost():
    table = routing.close_table(CROWD, [1, 1, 1], 0.99, 4)
    # at the cap, an item costs its chance of a wrong label times 1 / (1 - target) = 100
    at_cap = table.lookup(np.array([4]), np.array([0.0]))[0]
    assert at_cap == pytest.approx(50.0, rel=1e-6)
    again = routing.CloseTable.from_dict(table.as_dict())
    m = np.linspace(-5, 5, 21)
    assert np.allclose(again.lookup(np.full(21, 1), m), table.lookup(np.full(21, 1), m), atol=1e-5)
    with pytest.raises(ValueError):
        routing.top_vs_rest(np.ones((2, 3, 2)))


def test_more_classes_route_on_the_top_class_against_the_rest():
    k = 4
    strong, weak = _symmetric(0.9, k), _symmetric(0.4, k)
    two = routing.top_vs_rest(strong)
    # right with 0.9; names the top class by mistake with 0.1 / 3; rows are distributions
    assert np.allclose(two, [[1 - 0.1 / 3, 0.1 / 3], [0.1, 0.9]])
    assert np.allclose(routing.top_vs_rest(np.stack([strong, weak]))[1], [[1 - 0.2, 0.2], [0.6, 0.4]])
    table = routing.close_table(np.stack([strong, weak]), [1, 1], 0.99, 4)
    lp = np.log(np.array([[0.25, 0.25, 0.25, 0.25], [0.9, 0.05, 0.03, 0.02]]))
    n = np.array([0, 2])
    saved_strong = routing.answers_saved(lp, n, strong, table)
    saved_weak = routing.answers_saved(lp, n, weak, table)
    assert (saved_strong > saved_weak).all()
    for who, saved in ((strong, saved_strong), (weak, saved_weak)):
        got = routing.route(lp, who, n, np.random.default_rng(7), random_share=0.0, table=table)
        assert got == int(np.argmax(saved))


def test_a_perfect_annotator_saves_more_than_a_spammer_and_a_spammer_saves_nothing():
    table = routing.close_table(CROWD, [1, 1, 1], 0.995, 5)
    rng = np.random.default_rng(5)
    lp = rng.normal(0, 2, size=(40, 2))
    n = rng.integers(0, 5, size=40)
    perfect = routing.answers_saved(lp, n, np.array([[0.999, 0.001], [0.001, 0.999]]), table)
    spam = routing.answers_saved(lp, n, np.full((2, 2), 0.5), table)
    assert (perfect > spam).all()
    # a spammer's answer only uses up a slot: what it saves is left(n) - 1 - left(n + 1)
    m = lp[:, 1] - lp[:, 0]
    assert np.allclose(spam, table.lookup(n, m) - 1 - table.lookup(n + 1, m))


def test_a_weak_annotator_is_sent_to_the_last_slot_of_a_sure_item_a_strong_one_to_a_fresh_item():
    table = routing.close_table(CROWD, [1, 1, 1], 0.995, 3)
    rng = np.random.default_rng(6)
    # candidates: a fresh item; a contested item one answer from the cap; a sure item one answer from the cap
    lp = np.array([[0.0, 0.0], [0.0, 0.2], [0.0, 4.5]])
    n = np.array([0, 2, 2])
    strong = np.array([[0.97, 0.03], [0.03, 0.97]])
    weak = np.array([[0.55, 0.45], [0.45, 0.55]])
    assert routing.route(lp, weak, n, rng, random_share=0.0, table=table) == 2
    assert routing.route(lp, strong, n, rng, random_share=0.0, table=table) != 2
    # without a table (before the first re-fit, or more than two classes): the information gain
    assert routing.route(lp, strong, n, rng, random_share=0.0) == 0
    with pytest.raises(ValueError):
        routing.route(lp, strong, n, rng, rule="nope")
