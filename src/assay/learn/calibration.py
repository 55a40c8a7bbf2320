"""Probability calibration: temperature scaling (Guo et al. 2017) — one
scalar T that divides the logits, fitted by minimising the negative
log-likelihood of held-out labels. It keeps the argmax (so accuracy) and
fixes over- or under-confidence."""

from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, t: float) -> float:
    z = logits / t
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray, *, lo: float = 0.05, hi: float = 20.0,
                    iters: int = 60) -> float:
    """The T in [lo, hi] minimising NLL (golden-section search on log T;
    NLL is unimodal in T for fixed logits). 1.0 without data."""
    logits = np.asarray(logits, float)
    y = np.asarray(y, np.intp)
    if y.size == 0:
        return 1.0
    finite = np.isfinite(logits)
    logits = np.where(finite, logits, -1e4)  # classes the model never saw
    a, b = np.log(lo), np.log(hi)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(logits, y, np.exp(c)), nll(logits, y, np.exp(d))
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(logits, y, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(logits, y, np.exp(d))
    return float(np.exp((a + b) / 2))


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE: |accuracy − confidence| averaged over equal-width confidence bins."""
    conf = proba.max(axis=1)
    right = proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(right[m].mean() - conf[m].mean())
    return float(total)
