"""The in-loop model: a calibrated linear classifier on embeddings.

Logistic regression (scikit-learn, multinomial) on the stored item vectors,
fast on a CPU for tens of thousands of labels. Calibration by temperature
scaling on out-of-fold logits: every training item is also predicted by a
model that did not see it (``oof_proba_``), which is what the auto-label
threshold is chosen on.
"""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput
from assay.learn.calibration import fit_temperature, softmax


class EmbeddingClassifier:
    """``fit(X, y, n_classes)`` then ``predict_proba(X)`` (calibrated).

    ``C``: inverse L2 strength; ``folds``: out-of-fold splits for calibration
    (fewer than ``min_calibration`` labels: no calibration, T = 1).
    Fitted: ``temperature_``, ``oof_proba_`` (n_train, K), ``classes_seen_``.
    """

    def __init__(self, *, C: float = 1.0, folds: int = 5, min_calibration: int = 30,
                 random_state: int = 0, max_iter: int = 300, class_weight: str | None = None) -> None:
        self.C = C
        self.folds = folds
        self.min_calibration = min_calibration
        self.random_state = random_state
        self.max_iter = max_iter
        self.class_weight = class_weight

    def _lr(self):
        try:
            from sklearn.linear_model import LogisticRegression
        except ImportError:
            raise InvalidInput("the in-loop model needs the ml extra: pip install 'assay[ml]'") from None
        return LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight=self.class_weight)

    def _logits(self, lr, X: np.ndarray) -> np.ndarray:
        out = np.full((X.shape[0], self.n_classes_), -np.inf)
        dec = lr.decision_function(X)
        if dec.ndim == 1:  # binary: sklearn gives one margin for classes_[1]
            dec = np.stack([np.zeros_like(dec), dec], axis=1)
        out[:, lr.classes_] = dec
        return out

    def fit(self, X, y, n_classes: int, sample_weight=None) -> EmbeddingClassifier:
        X = np.asarray(X, np.float32)
        y = np.asarray(y, np.intp)
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise InvalidInput("X must be (n, d) with one label per row")
        if y.size == 0 or (y < 0).any() or (y >= n_classes).any():
            raise InvalidInput("labels must be class codes 0..n_classes-1, at least one")
        self.n_classes_ = n_classes
        self.classes_seen_ = np.unique(y)
        self.temperature_ = 1.0
        if self.classes_seen_.size < 2:  # nothing to discriminate: predict that class
            self.lr_ = None
            self.oof_proba_ = self._constant(y.size)
            return self
        rng = np.random.default_rng(self.random_state)
        oof = np.full((y.size, n_classes), -np.inf)
        folds = min(self.folds, int(np.bincount(y)[self.classes_seen_].min()))
        if y.size >= self.min_calibration and folds >= 2:
            fold = _stratified_folds(y, folds, rng)
            for f in range(folds):
                tr, te = fold != f, fold == f
                if np.unique(y[tr]).size < 2:
                    continue
                lr = self._lr().fit(X[tr], y[tr], sample_weight=None if sample_weight is None else sample_weight[tr])
                oof[te] = self._logits(lr, X[te])
            ok = np.isfinite(oof).any(axis=1)
            self.temperature_ = fit_temperature(oof[ok], y[ok])
        self.lr_ = self._lr().fit(X, y, sample_weight=sample_weight)
        if not np.isfinite(oof).any():
            oof = self._logits(self.lr_, X)  # too few labels for folds: in-sample (optimistic)
        self.oof_proba_ = softmax(np.where(np.isfinite(oof), oof / self.temperature_, -1e9))
        return self

    def _constant(self, n: int) -> np.ndarray:
        p = np.zeros((n, self.n_classes_))
        p[:, self.classes_seen_[0]] = 1.0
        return p

    def decision(self, X) -> np.ndarray:
        return self._logits(self.lr_, np.asarray(X, np.float32))

    def predict_proba(self, X) -> np.ndarray:
        X = np.asarray(X, np.float32)
        if self.lr_ is None:
            return self._constant(X.shape[0])
        z = self._logits(self.lr_, X) / self.temperature_
        return softmax(np.where(np.isfinite(z), z, -1e9))

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)


def _stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    fold = np.empty(y.size, np.intp)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold[idx] = np.arange(idx.size) % k
    return fold
