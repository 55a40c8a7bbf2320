"""Truth inference over token-level BIO answers: token majority vote, token
Dawid-Skene and a sequence model (a Bayesian HMM over the true tags whose
emissions are every worker's confusion, conditioned on the worker's own
previous tag, as in BSC-seq, Simpson & Gurevych 2019).

Every estimator takes the same arrays (see :meth:`TokenMajorityVote.fit`)
and leaves the same fitted attributes:

``tags_`` (N,)        the decoded tag of every token (items laid end to end)
``proba_`` (N, K)     each token's posterior over the K = 1 + 2T tags
``sent_ptr_`` (I+1,)  item i's tokens are ``sent_ptr_[i]:sent_ptr_[i+1]``
``worker_precision_``, ``worker_recall_`` (W, T)  token-level, per entity type
``span_first_, span_last_, span_type_, span_confidence_`` the decoded spans
``item_confidence_`` (I,)  the probability that an item's decoded tags are all right
"""

from __future__ import annotations

import numpy as np

from assay.quality._spans_bio import SpanInputError, tag_runs
from assay.quality._spans_hmm import Chain, one_blas_thread

_NEG = -1e4  # log score of a structurally impossible event


def _valid_obs(n_types: int) -> np.ndarray:
    """(P, K) mask: a worker's tag o is possible after their previous class p
    (an I-x only continues a worker's own x entity)."""
    k = 1 + 2 * n_types
    ok = np.ones((1 + n_types, k), bool)
    for x in range(n_types):
        ok[np.arange(1 + n_types) != 1 + x, 2 + 2 * x] = False
    return ok


def _valid_transitions(n_types: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, K) allowed true-tag transitions and (K,) allowed first tags."""
    k = 1 + 2 * n_types
    trans = np.ones((k, k), bool)
    first = np.ones(k, bool)
    for x in range(n_types):
        i_x = 2 + 2 * x
        trans[:, i_x] = False
        trans[[1 + 2 * x, i_x], i_x] = True
        first[i_x] = False
    return trans, first


class _Data:
    """Checked answers plus the sparse design matrix: X[row, column] = 1
    where column = (worker, the worker's previous class, the worker's tag)
    and row = the token (or, with ``sequential``, its row in the chain's
    position-major layout, ``self.chain.row_of``)."""

    def __init__(self, lengths, row_item, row_worker, tags, n_types, n_workers, prev_aware,
                 sequential=False) -> None:
        self.lengths = np.asarray(lengths, np.int64)
        self.row_item = np.asarray(row_item, np.int64)
        self.row_worker = np.asarray(row_worker, np.int64)
        tags = np.asarray(tags, np.int64)
        if self.lengths.ndim != 1 or (self.lengths < 0).any():
            raise SpanInputError("lengths must be a 1-d array of token counts >= 0")
        if self.row_item.shape != self.row_worker.shape or self.row_item.ndim != 1:
            raise SpanInputError("row_item and row_worker must be 1-d arrays of the same length")
        if self.row_item.size and (self.row_item.min() < 0 or self.row_item.max() >= self.lengths.size):
            raise SpanInputError("row_item must index lengths")
        if self.row_worker.size and self.row_worker.min() < 0:
            raise SpanInputError("row_worker must be >= 0")
        self.sent_ptr = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        row_len = self.lengths[self.row_item]
        row_ptr = np.concatenate([[0], np.cumsum(row_len)]).astype(np.int64)
        if tags.shape != (int(row_ptr[-1]),):
            raise SpanInputError(f"tags must hold one tag per token of every answer row ({row_ptr[-1]}), "
                                 f"got shape {tags.shape}")
        if n_types is None:
            n_types = int((tags.max(initial=0) + 1) // 2)
        self.n_types, self.k = n_types, 1 + 2 * n_types
        if tags.size and (tags.min() < 0 or tags.max() >= self.k):
            raise SpanInputError(f"tags must be codes in [0, {self.k}) for {n_types} types")
        self.n_workers = int(n_workers if n_workers is not None else self.row_worker.max(initial=-1) + 1)
        if self.row_worker.size and self.row_worker.max() >= self.n_workers:
            raise SpanInputError(f"row_worker must be < n_workers ({self.n_workers})")
        self.n_tokens = int(self.sent_ptr[-1])
        ix = np.int32 if max(tags.size, self.n_tokens) < 2**31 - 1 else np.int64
        tags = tags.astype(ix)
        row_of_answer = np.repeat(np.arange(row_len.size, dtype=ix), row_len)
        tok = (self.sent_ptr[self.row_item] - row_ptr[:-1]).astype(ix)[row_of_answer] + np.arange(tags.size, dtype=ix)
        cls = (tags + 1) // 2
        prev = np.zeros(tags.size, ix)
        prev[1:] = cls[:-1]
        prev[row_ptr[:-1][row_len > 0]] = 0
        # an I-x that does not continue the worker's own x entity is read as B-x
        bad_i = (tags > 0) & (tags % 2 == 0) & (prev != cls)
        tags = np.where(bad_i, tags - 1, tags)
        self.tok, self.tags, self.prev = tok, tags, prev
        self.chain = Chain(self.lengths) if sequential else None
        self.rows = self.chain.row_of[tok] if sequential else tok
        self.n_prev = 1 + n_types if prev_aware else 1
        col = ((self.row_worker.astype(np.int64) * self.n_prev)[row_of_answer]
               + (prev if prev_aware else 0)) * self.k + tags
        self.n_cols = self.n_workers * self.n_prev * self.k
        from scipy import sparse  # here, not at import: `import assay.quality` stays light

        self.x = sparse.csr_matrix((np.ones(tags.size, np.float32), (self.rows, col)),
                                   shape=(self.n_tokens, self.n_cols))
        self.xt = self.x.T  # a CSC view: X.T @ dense scatters row by row (no random gathers)

    def votes(self) -> np.ndarray:
        """(N, K) answer counts per row (token) and tag."""
        flat = np.bincount(self.rows * self.k + self.tags, minlength=self.n_tokens * self.k)
        return flat.reshape(self.n_tokens, self.k).astype(float)


class TokenMajorityVote:
    """Each token takes its most voted tag (an entity tag with as many votes
    as O wins: marking is rarer than not marking; between entity tags the lower code);
    an I-x that follows no x entity opens one. ``proba_`` is the vote share."""

    sequential = False

    def fit(self, lengths, row_item, row_worker, tags, *, n_types=None, n_workers=None):
        """Fit on answers given as arrays.

        lengths (I,)  tokens per item; row_item, row_worker (R,) the item and
        worker of every answer row; tags: the concatenation, row by row, of
        each row's ``lengths[row_item[r]]`` tag codes (0 = O, 1 + 2x = B-x,
        2 + 2x = I-x)."""
        d = _Data(lengths, row_item, row_worker, tags, n_types, n_workers, prev_aware=False)
        v = d.votes()
        n = v.sum(axis=1, keepdims=True)
        proba = np.where(n > 0, v / np.maximum(n, 1), np.eye(d.k)[0])
        self._finish(d, proba, (proba - 1e-9 * np.eye(d.k)[0]).argmax(axis=1))
        return self

    def _finish(self, d: _Data, proba, tags, proba_rows=None) -> None:
        """Fitted attributes from the posteriors and the decoded tags (token
        order; ``proba_rows``: the posteriors in ``d``'s row order if it differs)."""
        self.n_types_, self.sent_ptr_, self.proba_, self.tags_ = d.n_types, d.sent_ptr, proba, tags
        first, last, typ = tag_runs(tags, d.sent_ptr)
        self.span_first_, self.span_last_, self.span_type_ = first, last, typ
        self._skills(d, proba if proba_rows is None else proba_rows)
        self.span_confidence_ = self._span_conf(first, last, typ)
        p_tok = np.log(np.maximum(proba[np.arange(tags.size), self._canonical(tags)], 1e-300))
        self.item_confidence_ = np.exp(np.add.reduceat(np.append(p_tok, 0.0), d.sent_ptr[:-1])
                                       * (d.lengths > 0))

    def _canonical(self, tags: np.ndarray) -> np.ndarray:
        """Tags with every run's opening token as B-x (the fix-up made explicit)."""
        out = tags.copy()
        out[self.span_first_] = 1 + 2 * self.span_type_
        return out

    def _span_conf(self, first, last, typ) -> np.ndarray:
        """P(B-x at first) * prod P(I-x inside) * P(not I-x after), token marginals
        taken as independent."""
        p = self.proba_
        n_in = last - first
        logc = np.log(np.maximum(p[first, 1 + 2 * typ], 1e-300))
        if n_in.sum():
            pos = np.repeat(first, n_in) + np.arange(int(n_in.sum())) - np.repeat(np.cumsum(n_in) - n_in, n_in) + 1
            vals = np.log(np.maximum(p[pos, np.repeat(2 + 2 * typ, n_in)], 1e-300))
            logc += np.bincount(np.repeat(np.arange(first.size), n_in), weights=vals, minlength=first.size)
        after = last + 1
        inside = after < self.sent_ptr_[np.searchsorted(self.sent_ptr_, first, side="right")]
        stop = np.ones(first.size)
        stop[inside] = 1.0 - p[after[inside], 2 + 2 * typ[inside]]
        return np.exp(logc) * stop

    def _skills(self, d: _Data, proba_rows) -> None:
        """Token-level precision and recall of every worker per type, from the
        expected (worker, tag given, true tag) counts under the posteriors."""
        counts = np.asarray(d.xt @ proba_rows, dtype=float).reshape(d.n_workers, d.n_prev, d.k, d.k).sum(axis=1)
        ent = (np.arange(d.k) + 1) // 2  # class of each tag
        prec = np.full((d.n_workers, d.n_types), np.nan)
        rec = np.full((d.n_workers, d.n_types), np.nan)
        for x in range(d.n_types):
            sel = ent == 1 + x
            hit = counts[:, sel][:, :, sel].sum(axis=(1, 2))
            given, true = counts[:, sel, :].sum(axis=(1, 2)), counts[:, :, sel].sum(axis=(1, 2))
            np.divide(hit, given, out=prec[:, x], where=given > 0)
            np.divide(hit, true, out=rec[:, x], where=true > 0)
        self.worker_precision_, self.worker_recall_ = prec, rec
        self.worker_tokens_ = np.bincount(d.row_worker, weights=d.lengths[d.row_item], minlength=d.n_workers)


class TokenDawidSkene(TokenMajorityVote):
    """Dawid-Skene over BIO tags, tokens independent: a full (K x K)
    confusion per worker and a tag prior, fitted by EM from the majority
    vote. Every worker's confusion has a Dirichlet prior centred on the
    pooled confusion of all workers (``prior_strength`` pseudo-answers per
    true tag) plus ``diag_prior`` on the right answer, so a worker with few
    answers counts as an average one. Decoding: the most probable tag per
    token, then the I-after-O fix-up. ``variational=True``: mean-field
    variational Bayes (E[log p] under the Dirichlet posteriors) instead of
    EM with posterior-mean parameters (measured worse, see docs/spans.md)."""

    prev_aware = False
    off_prior = 0.1  # pseudo-answers on every possible tag of a confusion row

    def __init__(self, *, max_iter: int = 100, tol: float = 1e-5, prior_strength: float = 4.0,
                 diag_prior: float = 1.0, variational: bool = False) -> None:
        if max_iter < 1:
            raise ValueError("max_iter must be at least 1")
        if prior_strength < 0 or diag_prior < 0:
            raise ValueError("prior_strength and diag_prior must be >= 0")
        self.max_iter, self.tol = max_iter, tol
        self.prior_strength, self.diag_prior = prior_strength, diag_prior
        self.variational = variational

    def fit(self, lengths, row_item, row_worker, tags, *, n_types=None, n_workers=None, init=None):
        """As :meth:`TokenMajorityVote.fit`; ``init`` optionally (N, K)
        starting posteriors (default: the vote shares)."""
        d = _Data(lengths, row_item, row_worker, tags, n_types, n_workers, prev_aware=self.prev_aware,
                  sequential=self.sequential)
        chain = d.chain
        if init is None:
            v = d.votes()
            gamma = (v + 1e-3 * np.eye(d.k)[0]) / (v.sum(1, keepdims=True) + 1e-3)
        else:
            gamma = np.asarray(init, float) if chain is None else np.asarray(init, float)[chain.token_of]
        xi = self._pair_counts(d, gamma) if self.sequential else None
        self.loglik_history_ = []
        with one_blas_thread():
            self._loop(d, chain, gamma, xi)
        return self

    def _loop(self, d, chain, gamma, xi) -> None:
        for it in range(self.max_iter):
            log_conf = self._m_confusion(d, gamma)
            log_e = np.asarray(d.x @ log_conf.reshape(d.n_cols, d.k).astype(np.float32))
            gamma, xi, log_z, state = self._e_step(d, chain, log_e, gamma, xi)
            self.loglik_history_.append(log_z)
            if it and abs(log_z - self.loglik_history_[-2]) <= self.tol * max(d.tags.size, 1):
                break
        self.n_iter_ = it + 1
        self.log_confusion_ = log_conf  # (W, P, K_obs, K_true)
        self._data, self._chain, self._state = d, chain, state
        self._decode(d, chain, log_e, gamma, state, log_z)

    def _e_step(self, d, chain, log_e, gamma, xi):
        log_prior = self._log_dirichlet_mean(gamma.sum(axis=0) + 1.0, np.ones(d.k, bool))
        post = log_e + log_prior
        post -= post.max(axis=1, keepdims=True)
        np.exp(post, out=post)
        s = post.sum(axis=1, keepdims=True)
        log_z = float(np.log(s).sum() + (log_e + log_prior).max(axis=1).sum())
        self.log_prior_ = log_prior
        return post / s, None, log_z, None

    def _log_dirichlet_mean(self, alpha: np.ndarray, ok: np.ndarray, axis: int = -1) -> np.ndarray:
        """E[log p] under Dirichlet(alpha) (variational) or log of its mean (EM),
        over the ``ok`` entries of ``axis``; the others get a huge negative."""
        a = np.where(ok, np.asarray(alpha, float), 0.0)
        tot = a.sum(axis=axis, keepdims=True)
        if self.variational:
            from scipy.special import digamma

            out = digamma(np.maximum(a, 1e-10)) - digamma(np.maximum(tot, 1e-10))
        else:
            out = np.log(np.maximum(a, 1e-300)) - np.log(np.maximum(tot, 1e-300))
        return np.where(ok, out, _NEG)

    def _m_confusion(self, d: _Data, gamma: np.ndarray) -> np.ndarray:
        """(W, P, K_obs, K_true) log confusion (or its variational expectation);
        keeps the posterior mean as ``confusion_`` (same axes)."""
        counts = np.asarray(d.xt @ gamma, dtype=float).reshape(d.n_workers, d.n_prev, d.k, d.k)
        ok = (_valid_obs(d.n_types) if d.n_prev > 1 else np.ones((1, d.k), bool))[:, :, None]  # (P, Ko, 1)
        right = np.zeros((d.n_prev, d.k, d.k))
        for t in range(d.k):
            o = t
            right[:, o, t] = 1.0
            if t and t % 2 == 0 and d.n_prev > 1:  # true I-x, worker not inside x: B-x is the right call
                p_not = np.arange(d.n_prev) != (t + 1) // 2
                right[p_not, t, t] = 0.0
                right[p_not, t - 1, t] = 1.0
        base = ok * (self.off_prior + self.diag_prior * right)
        pooled = counts.sum(axis=0) + base
        pooled = np.where(ok, pooled, 0.0)
        pooled /= pooled.sum(axis=1, keepdims=True)
        alpha = counts + base[None] + self.prior_strength * pooled[None]
        self.confusion_ = np.where(ok[None], alpha, 0.0) / np.where(ok[None], alpha, 0.0).sum(axis=2, keepdims=True)
        return self._log_dirichlet_mean(alpha, ok[None], axis=2)

    def _pair_counts(self, d, gamma):
        return None

    def _decode(self, d, chain, log_e, gamma, state, log_z) -> None:
        self._finish(d, gamma, gamma.argmax(axis=1))

    def worker_confusion(self) -> np.ndarray:
        """(W, K_true, K_obs): P(worker's tag | true tag), averaged over the
        worker's previous class where the model conditions on it."""
        conf = np.exp(self.log_confusion_).mean(axis=1)  # (W, K_obs, K_true)
        return conf.transpose(0, 2, 1) / conf.transpose(0, 2, 1).sum(axis=2, keepdims=True)
