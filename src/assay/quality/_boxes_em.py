"""The skill model behind ``method="em"`` of :mod:`assay.quality.boxes`:
which clusters are real objects (EM over annotators' recall and false-box
rate) and where they are (fusion weighted by each annotator's localisation
error). Flat numpy over all clusters at once.
"""

from __future__ import annotations

import numpy as np

#: pseudo-counts pulling each annotator's rates (and localisation error) towards the crowd's
SHRINK = 2.0
#: rates stay inside (EPS, 1 - EPS)
EPS = 1e-4


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class _Crowd:
    """The counts EM needs, and its two steps over a flat parameter vector
    ``theta = [logit easy recall (W), logit hard recall (W), log false rate (W), logit join, log mix (3)]``."""

    def __init__(self, cluster, cluster_item, box_worker, ans_item, ans_worker, n_workers):
        from scipy import sparse  # on first use: importing assay stays light

        k = len(cluster_item)
        self.n_items = n_items = int(max(cluster_item.max(initial=-1), ans_item.max(initial=-1))) + 1
        self.w, self.cluster_item = n_workers, cluster_item
        # incidence: cluster x annotator (their box in it), image x annotator (they answered it)
        self.boxed = sparse.csr_matrix((np.ones(len(cluster)), (cluster, box_worker)), shape=(k, n_workers))
        self.answered = sparse.csr_matrix((np.ones(len(ans_item)), (ans_item, ans_worker)),
                                          shape=(n_items, n_workers))
        self.boxed_t, self.answered_t = self.boxed.T.tocsr(), self.answered.T.tocsr()
        self.votes = np.asarray(self.boxed.sum(axis=1)).ravel()
        self.n_ans = np.bincount(ans_item, minlength=n_items).astype(float)[cluster_item]
        self.images_of = np.bincount(ans_worker, minlength=n_workers).astype(float)

    def unpack(self, theta):
        w = self.w
        recall = _sigmoid(theta[:2 * w].reshape(2, w).T)
        lam = np.exp(theta[2 * w:3 * w])
        join = float(_sigmoid(theta[3 * w]))
        mix = np.exp(theta[3 * w + 1:] - theta[3 * w + 1:].max())
        return recall, lam, join, mix / mix.sum()

    def estep(self, theta):
        """Posterior over (easy, hard, false) per cluster, and the log-likelihood."""
        recall, lam, join, mix = self.unpack(theta)
        miss = np.log1p(-recall)
        per_box = self.boxed @ np.column_stack([np.log(recall) - miss, lam])
        per_image = self.answered @ np.column_stack([miss, lam])
        ci, votes = self.cluster_item, self.votes
        ll = np.column_stack([
            per_image[ci, :2] + per_box[:, :2],
            np.log(per_box[:, 2]) - np.log(per_image[ci, 2]) + (votes - 1) * np.log(join)
            + (self.n_ans - votes) * np.log1p(-join),
        ]) + np.log(mix)
        top = ll.max(axis=1, keepdims=True)
        post = np.exp(ll - top)
        total = post.sum(axis=1, keepdims=True)
        return post / total, float((np.log(total) + top).sum())

    def mstep(self, post, lam):
        """Rates from the posteriors (``lam``: the current false rates, to share a false
        cluster among its possible starters)."""
        k = len(post)
        drew = self.boxed_t @ post[:, :2]
        seen = self.answered_t @ np.column_stack([np.bincount(self.cluster_item, weights=post[:, c],
                                                              minlength=self.n_items) for c in (0, 1)])
        recall = _rates(drew, seen)
        recall[:, 1] = np.minimum(recall[:, 1], recall[:, 0])  # a hard object is no easier for anyone
        started = lam * (self.boxed_t @ (post[:, 2] / (self.boxed @ lam)))
        lam = np.maximum((started + SHRINK * (started.sum() + 1.0) / (self.images_of.sum() + 1.0))
                         / (self.images_of + SHRINK), EPS)
        f = post[:, 2]
        join = np.clip(((f * (self.votes - 1)).sum() + 1.0) / ((f * (self.n_ans - 1)).sum() + 2.0), EPS, 1 - EPS)
        mix = (post.sum(axis=0) + 1.0) / (k + 3.0)
        return np.concatenate([_logit(recall.T).ravel(), np.log(lam), [_logit(join)], np.log(mix)])

    def step(self, theta):
        post, ll = self.estep(theta)
        return self.mstep(post, self.unpack(theta)[1]), post, ll


def _rates(drew, seen):
    """Per-annotator rates drew/seen (columns: kinds), shrunk towards the crowd's (SHRINK pseudo-answers)."""
    r0 = (drew.sum(axis=0) + 1.0) / (seen.sum(axis=0) + 2.0)
    return np.clip((drew + SHRINK * r0) / (seen + SHRINK), EPS, 1 - EPS)


def existence_em(cluster: np.ndarray, cluster_item: np.ndarray, box_worker: np.ndarray,
                 ans_item: np.ndarray, ans_worker: np.ndarray, n_workers: int,
                 *, max_iter: int = 200, tol: float = 1e-4):
    """Posterior that each cluster is a real object.

    Model, per image and the annotators ``A`` who answered it. A cluster is
    one of three kinds, with prior shares learned:

    * a real object that is easy to see: each ``w`` in ``A`` boxed it with
      probability ``recall[w]`` (an empty answer: "not boxed" for every
      cluster of the image);
    * a real object that is hard to see (small, occluded, at the edge): each
      ``w`` boxed it with their own ``hard_recall[w]``, at most ``recall[w]``;
    * a false cluster: started by one annotator's false box (``w`` makes
      ``false_rate[w]`` of them per image, so it is ``w``'s with probability
      ``false_rate[w] / sum over A``) and every other annotator in ``A`` put
      a box on the same spot with probability ``join``, one number for the
      crowd.

    Without the hard kind, EM explains objects that only some annotators box
    as false clusters that several joined (a large ``join``); with it, a
    false cluster is what independent mistakes look like: mostly one box.
    Starting point: clusters boxed by >= 80 % of the image's annotators
    easy, other clusters of two boxes or more hard, single boxes false. EM
    steps are accelerated by SQUAREM (Varadhan and Roland 2008: a step along
    the extrapolated direction of two EM steps, kept only if it raises the
    likelihood), which takes a few tens of steps where plain EM takes hundreds.

    Returns ``(q, recall, false_rate, prior, join)``: q (K,) posterior real,
    the rates (W,), prior = share of real clusters.
    """
    crowd = _Crowd(cluster, cluster_item, box_worker, ans_item, ans_worker, n_workers)
    votes, share = crowd.votes, crowd.votes / np.maximum(crowd.n_ans, 1.0)
    post = np.column_stack([share >= 0.8, (votes >= 2) & (share < 0.8), (votes < 2) & (share < 0.8)]).astype(float)
    theta = crowd.mstep(post, np.full(n_workers, 0.1))
    for _ in range(max_iter):
        # SQUAREM: two EM steps, an extrapolated point, one EM step from it (kept if no worse)
        t1, post1, _ = crowd.step(theta)
        t2, _, ll2 = crowd.step(t1)
        r, v = t1 - theta, t2 - 2 * t1 + theta
        alpha = -min(max(np.sqrt((r @ r) / max(v @ v, 1e-300)), 1.0), 64.0)
        t3, post3, ll3 = crowd.step(theta - 2 * alpha * r + alpha * alpha * v)
        new_theta, new_post = (t3, post3) if np.isfinite(ll3) and ll3 >= ll2 else (crowd.step(t2)[:2])
        done = np.max(np.abs(new_post - post1), initial=0.0) < tol
        theta, post = new_theta, new_post
        if done:
            break
    post, _ = crowd.estep(theta)
    recall, lam, join, mix = crowd.unpack(theta)
    return post[:, 0] + post[:, 1], recall[:, 0], lam, float(mix[0] + mix[1]), join, recall[:, 1]


def _weighted_median(values: np.ndarray, weights: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, the weighted median of ``values`` (one column)."""
    order = np.lexsort((values, group))
    v, w, g = values[order], weights[order], group[order]
    cum = np.cumsum(w)
    total = np.bincount(g, weights=w, minlength=n_groups)
    start = np.r_[0.0, np.cumsum(total)[:-1]]
    half = start[g] + 0.5 * total[g]
    # first element of each group whose cumulative weight reaches half its total
    first = (cum >= half - 1e-12 * np.maximum(total[g], 1.0))
    prev_ok = np.r_[False, first[:-1]] & np.r_[False, g[1:] == g[:-1]]
    pick = first & ~prev_ok
    out = np.zeros(n_groups)
    out[g[pick]] = v[pick]
    return out


def fuse(xyxy: np.ndarray, cluster: np.ndarray, box_worker: np.ndarray, n_clusters: int, n_workers: int,
         q: np.ndarray, *, rounds: int = 3, nu: float = 4.0):
    """Fused box per cluster, weighting each annotator by 1 / their localisation error².

    Localisation error ``sigma[w]``: the root mean square of ``w``'s box edges'
    distance to the fused box, in units of the fused box's width (x) and
    height (y), over clusters weighted by ``q`` (real ones count), shrunk
    towards the crowd's. Starting from the per-edge median, each round
    re-estimates ``sigma`` and takes each edge as the weighted mean of the
    cluster's boxes, a box's weight ``1 / sigma[w]²`` times the Student-t
    factor ``(nu + 1) / (nu + z²)`` (``z²``: its squared distance over
    ``sigma[w]²``): the best estimate when edges scatter normally, and a box
    far off (a careless or misplaced one) loses its pull.

    Returns ``(fused (K, 4), loc_error (W,))``.
    """
    ones = np.ones(len(xyxy))
    fused = np.column_stack([_weighted_median(xyxy[:, d], ones, cluster, n_clusters) for d in range(4)])
    sigma = np.ones(n_workers)
    single = np.bincount(cluster, minlength=n_clusters)[cluster] < 2
    for _ in range(rounds):
        f = fused[cluster]
        wh = np.maximum(f[:, 2:] - f[:, :2], 1e-9)
        err2 = (((xyxy - f) / np.concatenate([wh, wh], axis=1)) ** 2).mean(axis=1)
        # a cluster of one box says nothing about its annotator's error
        wq = np.where(single, 0.0, q[cluster])
        num = np.bincount(box_worker, weights=wq * err2, minlength=n_workers)
        den = np.bincount(box_worker, weights=wq, minlength=n_workers)
        crowd = (num.sum() + 1e-6) / (den.sum() + 1e-6)
        sigma2 = (num + SHRINK * crowd) / (den + SHRINK)
        sigma = np.sqrt(sigma2)
        wb = 1.0 / sigma2[box_worker]
        wb = wb * (nu + 1.0) / (nu + err2 / sigma2[box_worker])
        tot = np.bincount(cluster, weights=wb, minlength=n_clusters)
        fused = np.column_stack([np.bincount(cluster, weights=wb * xyxy[:, d], minlength=n_clusters)
                                 for d in range(4)]) / tot[:, None]
    return fused, sigma
