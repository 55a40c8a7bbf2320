"""Seeded synthetic crowd: long (item, worker, label) answers with known truth.

Default size (the speed bar): 1,000,000 answers = 100,000 items x 10 answers,
2,000 workers, 5 classes. Workers have their own confusion matrices: most are
middling (accuracy ~ Beta(2, 2)), 20 % are spammers who answer from a fixed
random distribution whatever the item; true classes are imbalanced.
"""

from __future__ import annotations

import numpy as np


def make_crowd(n_items: int = 100_000, n_workers: int = 2_000, n_classes: int = 5,
               per_item: int = 10, spammers: float = 0.20, seed: int = 0):
    """Return ``(items, workers, labels, truth)`` as int arrays (truth per item)."""
    rng = np.random.default_rng(seed)
    k = n_classes
    prior = np.sort(rng.dirichlet(np.full(k, 3.0)))[::-1]
    truth = rng.choice(k, size=n_items, p=prior)

    acc = rng.beta(2.0, 2.0, size=n_workers)
    off = rng.dirichlet(np.ones(k - 1), size=(n_workers, k))  # spread of errors per true class
    conf = np.empty((n_workers, k, k))
    for c in range(k):
        others = [x for x in range(k) if x != c]
        conf[:, c, c] = acc
        conf[:, c, others] = (1 - acc)[:, None] * off[:, c, :]
    spam = rng.random(n_workers) < spammers
    conf[spam] = rng.dirichlet(np.ones(k), size=int(spam.sum()))[:, None, :]

    # per_item distinct workers per item: w = (a + b*j) mod W with b coprime to W.
    a = rng.integers(0, n_workers, size=n_items)
    b = rng.integers(1, n_workers, size=n_items)
    b = np.where(np.gcd(b, n_workers) == 1, b, 1)
    j = np.arange(per_item)
    workers = ((a[:, None] + b[:, None] * j[None, :]) % n_workers).ravel()
    items = np.repeat(np.arange(n_items), per_item)

    cdf = np.cumsum(conf[workers, truth[items]], axis=1)
    u = rng.random(items.size)[:, None]
    labels = np.minimum((u > cdf).sum(axis=1), k - 1)
    order = rng.permutation(items.size)  # answers arrive in no particular order
    return items[order], workers[order], labels[order], truth
