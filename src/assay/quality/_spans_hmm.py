"""Forward-backward and Viterbi over many sentences at once.

Sentences are sorted by length (longest first) and their tokens laid out
*position-major* ("rows"): all first tokens, then all second tokens, ...
Position j then holds a contiguous block whose first ``n_at[j]`` rows are
the sentences still running, so every step of the recursions is one small
matrix product over a slice, whatever the number of sentences. The models
keep their per-token arrays in row order throughout (``Chain.row_of`` maps a
token to its row), so no array is permuted inside the fitting loop.
"""

from __future__ import annotations

import contextlib

import numpy as np


def one_blas_thread():
    """A context with BLAS held to one thread: the recursions multiply many
    small (m, K) x (K, K) blocks, where a threaded BLAS only adds contention
    (8x slower on a loaded 2-core machine). A no-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class Chain:
    """The position-major layout of sentences of the given ``lengths``."""

    def __init__(self, lengths: np.ndarray) -> None:
        lengths = np.asarray(lengths, np.int64)
        self.lengths = lengths
        self.sent_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        n = self.n_tokens = int(self.sent_ptr[-1])
        self.order = np.argsort(-lengths, kind="stable")  # sentence at each rank
        max_len = int(lengths.max(initial=0))
        per_len = np.bincount(lengths, minlength=max_len + 1)
        self.n_at = (lengths.size - np.cumsum(per_len))[:max_len].astype(np.int64)  # sentences longer than j
        self.off = np.concatenate([[0], np.cumsum(self.n_at)]).astype(np.int64)
        # rank of every row, and its position
        self.rank = np.arange(n) - np.repeat(self.off[:-1], self.n_at)
        pos = np.repeat(np.arange(max_len), self.n_at)
        token = self.sent_ptr[:-1][self.order][self.rank] + pos
        self.row_of = np.empty(n, np.int64)
        self.row_of[token] = np.arange(n)  # token -> row
        self.token_of = token  # row -> token
        nxt_n = np.append(self.n_at[1:], 0)
        has_next = self.rank < np.repeat(nxt_n, self.n_at)
        self.next_row = np.where(has_next, np.repeat(self.off[1:], self.n_at) + self.rank, -1)
        self.first_rows = np.arange(int(self.n_at[0]) if max_len else 0)

    def _blocks(self):
        for j in range(self.n_at.size):
            yield j, slice(int(self.off[j]), int(self.off[j + 1])), int(self.n_at[j])

    def forward_backward(self, log_e: np.ndarray, log_a: np.ndarray, log_pi: np.ndarray):
        """Posterior marginals of a first-order chain with start scores
        ``log_pi`` (K,), transition scores ``log_a`` (K, K) and emission
        scores ``log_e`` (N, K), rows in this layout's order.

        Returns ``(gamma, xi, log_z, state)``: gamma (N, K), xi (K, K) the
        expected transition counts summed over all sentences, log_z the
        summed log normaliser, and ``state`` (scaled beta, c, e and each
        row's log normaliser ``log_c``) for :meth:`next_given`."""
        n, k = log_e.shape
        dt = log_e.dtype
        shift = log_e.max(axis=1)
        e = log_e - shift[:, None]
        np.maximum(e, -80.0, out=e)  # no subnormal numbers (slow), in float32 too
        np.exp(e, out=e)
        a_mat, pi = np.exp(log_a).astype(dt), np.exp(log_pi).astype(dt)
        ones = np.ones(k, dt)
        alpha, beta, c = np.empty((n, k), dt), np.empty((n, k), dt), np.empty(n, dt)
        prev = None
        for j, sl, m in self._blocks():
            cur = e[sl] * (pi if j == 0 else alpha[prev][:m] @ a_mat)
            c[sl] = cur @ ones
            alpha[sl] = cur / c[sl, None]
            prev = sl
        xi = np.zeros((k, k), dt)
        a_t = np.ascontiguousarray(a_mat.T)
        nxt = None
        for j, sl, m in reversed(list(self._blocks())):
            beta[sl] = 1.0
            if nxt is not None:
                m2, sl2 = nxt
                w = e[sl2] * beta[sl2] / c[sl2, None]
                beta[sl.start:sl.start + m2] = w @ a_t
                xi += alpha[sl.start:sl.start + m2].T @ w
            nxt = (m, sl)
        xi = (xi * a_mat).astype(float)
        gamma = alpha * beta
        gamma /= (gamma @ ones)[:, None]
        log_c = np.log(c, dtype=float) + shift
        state = {"beta": beta, "c": c, "e": e, "a": a_mat, "log_c": log_c}
        return gamma, xi, float(log_c.sum()), state

    def sentence_sums(self, per_row: np.ndarray) -> np.ndarray:
        """(I,): the sum of ``per_row`` over each sentence's rows (0 when empty)."""
        out = np.zeros(self.lengths.size)
        out[self.order[: self.first_rows.size]] = np.bincount(self.rank, weights=per_row,
                                                              minlength=self.first_rows.size)
        return out

    def next_given(self, state: dict, frm: np.ndarray, to: np.ndarray) -> np.ndarray:
        """(N, len(frm)): P(tag of the next row = to[i] | tag here = frm[i],
        all answers) under the posterior chain; 0 at a sentence's last row."""
        out = np.zeros((self.n_tokens, frm.size))
        t = np.flatnonzero(self.next_row >= 0)
        t1 = self.next_row[t]
        beta, e, c = state["beta"], state["e"], state["c"]
        num = state["a"][frm, to][None, :] * e[t1][:, to] * beta[t1][:, to]
        den = c[t1][:, None] * beta[t][:, frm]
        out[t] = num / np.maximum(den, 1e-300)
        return np.clip(out, 0.0, 1.0)

    def viterbi(self, log_e: np.ndarray, log_a: np.ndarray, log_pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The best tag sequence of every sentence (per row) and each
        sentence's path score (the sum of its log scores), shape (I,)."""
        n, k = log_e.shape
        delta = np.empty((n, k))
        back = np.zeros((n, k), np.int8 if k < 128 else np.int32)
        prev = None
        for j, sl, m in self._blocks():
            if j == 0:
                delta[sl] = log_pi + log_e[sl]
            else:
                cand = delta[prev][:m, :, None] + log_a[None, :, :]
                best = cand.argmax(axis=1)
                back[sl] = best
                delta[sl] = np.take_along_axis(cand, best[:, None, :], axis=1)[:, 0, :] + log_e[sl]
            prev = sl
        path = np.zeros(n, np.int64)
        cur = np.zeros(self.first_rows.size, np.int64)
        score = np.zeros(self.first_rows.size)
        for j, sl, m in reversed(list(self._blocks())):
            nxt = int(self.n_at[j + 1]) if j + 1 < self.n_at.size else 0
            d = delta[sl]
            ends = np.arange(nxt, m)  # sentences whose last token is here
            cur[ends] = d[ends].argmax(axis=1)
            score[ends] = d[ends, cur[ends]]
            if nxt:
                cur[:nxt] = back[self.off[j + 1]:self.off[j + 1] + nxt][np.arange(nxt), cur[:nxt]]
            path[sl] = cur[:m]
        sent_score = np.zeros(self.lengths.size)
        sent_score[self.order[: self.first_rows.size]] = score
        return path, sent_score
