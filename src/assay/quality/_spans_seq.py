"""The sequence model: true BIO tags follow a first-order Markov chain (a
transition matrix with the impossible moves, O -> I-x and B-y/I-y -> I-x,
held at zero); each worker emits their own tag from a confusion that depends
on the true tag *and* on the worker's previous class (outside, or inside an
x entity), so that where a worker ends or continues a span is modelled as
well as which tokens they mark. Fitted by EM with posterior-mean parameters
(Dirichlet pseudo-counts on every row; forward-backward per sentence for the
tags), the shape of BSC-seq (Simpson & Gurevych 2019), which uses
variational Bayes instead (``variational=True`` here; measured worse: it
makes rare confusions near impossible and the posteriors overconfident). The
workers' priors are centred on the pooled confusion of all workers
(empirical Bayes)."""

from __future__ import annotations

import numpy as np

from assay.quality._spans_bio import _paint, tag_runs
from assay.quality._spans_models import TokenDawidSkene, _valid_transitions


class SequenceCrowd(TokenDawidSkene):
    """Bayesian HMM over the true tags with per-worker, previous-tag-aware
    confusions (see the module docstring). Decoding: the Viterbi path of the
    posterior chain; ``item_confidence_`` is that path's posterior
    probability, ``span_confidence_`` the posterior probability of each exact
    span (B-x at its first token, I-x through its last, no I-x after).

    Extra fitted attributes: ``log_transition_`` (K, K), ``log_start_`` (K,)
    (log parameters, or their variational expectations)."""

    prev_aware = True
    sequential = True

    def __init__(self, *, max_iter: int = 50, tol: float = 1e-5, prior_strength: float = 4.0,
                 diag_prior: float = 1.0, transition_prior: float = 1.0, variational: bool = False,
                 decode: str = "expected_f1") -> None:
        super().__init__(max_iter=max_iter, tol=tol, prior_strength=prior_strength, diag_prior=diag_prior,
                         variational=variational)
        if transition_prior <= 0:
            raise ValueError("transition_prior must be > 0")
        if decode not in ("expected_f1", "viterbi"):
            raise ValueError("decode must be 'expected_f1' or 'viterbi'")
        self.transition_prior, self.decode = transition_prior, decode

    def _pair_counts(self, d, gamma) -> np.ndarray:
        """Expected transition counts with neighbouring tokens taken as independent."""
        t = np.flatnonzero(d.chain.next_row >= 0)
        return gamma[t].T @ gamma[d.chain.next_row[t]]

    def _e_step(self, d, chain, log_e, gamma, xi):
        trans_ok, first_ok = _valid_transitions(d.n_types)
        log_a = self._log_dirichlet_mean(xi + self.transition_prior, trans_ok, axis=1)
        log_pi = self._log_dirichlet_mean(gamma[chain.first_rows].sum(axis=0) + self.transition_prior, first_ok)
        self.log_transition_, self.log_start_ = log_a, log_pi
        return chain.forward_backward(log_e, log_a, log_pi)

    def _decode(self, d, chain, log_e, gamma, state, log_z) -> None:
        path, _ = chain.viterbi(log_e, self.log_transition_, self.log_start_)
        self._finish(d, gamma[chain.row_of], path[chain.row_of], proba_rows=gamma)
        if self.decode == "expected_f1":
            first, last, typ = _candidates(self, d)
            p = self._span_probs(chain, state, gamma, first, last, typ)
            expected_true = float(gamma[:, 1::2].sum())  # every true span starts with one B- tag
            first, last, typ, p = _expected_f1_pick(first, last, typ, p, expected_true, d.n_tokens)
            tags = np.zeros(d.n_tokens, np.int64)
            _paint(tags, first, last, typ)
            self.tags_, self.span_first_, self.span_last_, self.span_type_ = tags, first, last, typ
            self.span_confidence_ = p
        else:
            self.span_confidence_ = self._span_probs(chain, state, gamma, self.span_first_, self.span_last_,
                                                     self.span_type_)
        score = chain.sentence_sums(_path_scores(chain, log_e, self.tags_[chain.token_of], self.log_start_,
                                                 self.log_transition_))
        sent_log_z = chain.sentence_sums(state["log_c"])
        self.item_confidence_ = np.where(d.lengths > 0, np.exp(np.minimum(score - sent_log_z, 0.0)), 1.0)

    def _span_probs(self, chain, state, gamma, first, last, typ) -> np.ndarray:
        """Posterior probability of each exact span (token first, last, type)."""
        if first.size == 0:
            return np.zeros(0)
        n_t = self.n_types_
        b, i = 1 + 2 * np.arange(n_t), 2 + 2 * np.arange(n_t)
        # (N, 2T): P(next = I-x | here = B-x), P(next = I-x | here = I-x)
        nxt = chain.next_given(state, np.concatenate([b, i]), np.concatenate([i, i]))
        row = chain.row_of
        logc = np.log(np.maximum(gamma[row[first], 1 + 2 * typ], 1e-300))
        n_in = last - first
        if n_in.sum():
            # step k of a span: from its token first + k (B-x when k = 0, else I-x) to I-x
            step = np.arange(int(n_in.sum())) - np.repeat(np.cumsum(n_in) - n_in, n_in)
            pos = np.repeat(first, n_in) + step
            col = np.repeat(typ, n_in) + np.where(step == 0, 0, n_t)
            vals = np.log(np.maximum(nxt[row[pos], col], 1e-300))
            logc += np.bincount(np.repeat(np.arange(first.size), n_in), weights=vals, minlength=first.size)
        stop = 1.0 - nxt[row[last], typ + np.where(n_in == 0, 0, n_t)]
        return np.clip(np.exp(logc) * stop, 0.0, 1.0)


def _candidates(model, d) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The spans worth scoring: every span some worker answered, and the
    Viterbi path's (token first, last, type), without repeats."""
    row_len = d.lengths[d.row_item]
    row_ptr = np.concatenate([[0], np.cumsum(row_len)]).astype(np.int64)
    f, la, t = tag_runs(d.tags.astype(np.int64), row_ptr)
    cand = np.concatenate([np.stack([d.tok[f], d.tok[la], t]),
                           np.stack([model.span_first_, model.span_last_, model.span_type_])], axis=1)
    cand = np.unique(cand.astype(np.int64), axis=1)
    return cand[0], cand[1], cand[2]


def _expected_f1_pick(first, last, typ, p, expected_true, n_tokens, floor=0.05):
    """Non-overlapping spans that maximise the expected F1 under the
    posterior: most probable first, then the prefix that maximises
    2 * sum(p) / (count + expected number of true spans). (A span above 0.5
    overlaps no other such span: overlapping exact spans exclude each other.)"""
    sure = p > 0.5
    taken = np.zeros(n_tokens + 1, np.int64)
    np.add.at(taken, first[sure], 1)
    np.add.at(taken, last[sure] + 1, -1)
    taken = np.cumsum(taken)[:-1] > 0
    covered = np.concatenate([[0], np.cumsum(taken)])  # tokens taken before each position
    free = covered[last + 1] == covered[first]  # overlaps no sure span
    order = np.flatnonzero(~sure & (p >= floor) & free)
    order = order[np.argsort(-p[order], kind="stable")]
    keep = list(np.flatnonzero(sure)[np.argsort(-p[sure], kind="stable")])
    for k in order.tolist():
        if not taken[first[k]:last[k] + 1].any():
            taken[first[k]:last[k] + 1] = True
            keep.append(k)
    keep = np.array(keep, np.int64)
    gain = 2 * np.cumsum(p[keep]) / (np.arange(1, keep.size + 1) + expected_true)
    n_best = int(np.argmax(gain)) + 1 if keep.size and gain.max() > 0 else 0
    keep = np.sort(keep[:n_best]) if n_best else keep[:0]
    keep = keep[np.lexsort((first[keep],))]
    return first[keep], last[keep], typ[keep], p[keep]


def _path_scores(chain, log_e, path_rows, log_pi, log_a) -> np.ndarray:
    """Per row: the log score that a given tag path adds there (start or
    transition score, plus the emission score)."""
    out = log_e[np.arange(path_rows.size), path_rows].astype(float)
    prev = np.full(path_rows.size, -1)
    has = chain.next_row >= 0
    prev[chain.next_row[has]] = np.flatnonzero(has)
    first = prev < 0
    out[first] += log_pi[path_rows[first]]
    out[~first] += log_a[path_rows[prev[~first]], path_rows[~first]]
    return out
