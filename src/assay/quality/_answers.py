"""The validated, integer-coded answer table every aggregator works on.

Answers are long rows ``(item, worker, label)`` of non-negative integer codes.
:class:`Answers` checks them once, drops duplicate ``(item, worker)`` rows
(keeping the last one, unless asked to keep all), sorts them by item and
pre-computes the index structures the EM loops reuse: one sort up front, then
every iteration is a handful of gathers and segment sums.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from assay.errors import InvalidInput

DUPLICATES = ("last", "all")


def _as_codes(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be a 1-d array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            arr = arr.astype(np.int64)
        else:
            raise InvalidInput(
                f"{name} must hold integer codes (got dtype {arr.dtype}); "
                "use assay.quality.aggregate() for string ids and labels"
            )
    arr = arr.astype(np.intp, copy=False)
    if arr.size and arr.min() < 0:
        raise InvalidInput(f"{name} must be non-negative integer codes")
    return arr


def _size(name: str, given: int | None, observed: int) -> int:
    if given is None:
        return observed
    given = int(given)
    if given < observed:
        raise InvalidInput(f"{name}={given} but the codes go up to {observed - 1}")
    return given


def _segments(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets and key values of the runs in an already sorted array."""
    if sorted_keys.size == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    change = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.intp)
    return starts, sorted_keys[starts]


class Answers:
    """Integer-coded answers, deduplicated and sorted by item.

    Attributes: ``items``, ``workers``, ``labels`` (int arrays of length
    ``n_answers``), ``n_items``, ``n_workers``, ``n_classes``.
    """

    def __init__(self, items, workers, labels, *, n_items=None, n_workers=None,
                 n_classes=None, duplicates: str = "last") -> None:
        if duplicates not in DUPLICATES:
            raise InvalidInput(f"duplicates must be one of {DUPLICATES}, got {duplicates!r}")
        items = _as_codes("items", items)
        workers = _as_codes("workers", workers)
        labels = _as_codes("labels", labels)
        if not (items.size == workers.size == labels.size):
            raise InvalidInput(
                f"items, workers and labels differ in length ({items.size}, {workers.size}, {labels.size})"
            )
        if items.size == 0:
            raise InvalidInput("no answers to aggregate (empty input)")
        self.n_items = _size("n_items", n_items, int(items.max()) + 1)
        self.n_workers = _size("n_workers", n_workers, int(workers.max()) + 1)
        self.n_classes = _size("n_classes", n_classes, int(labels.max()) + 1)
        self.n_rows = int(items.size)

        # Sort by (item, worker, input row): duplicates become neighbours in
        # input order, so "keep the last" keeps the last of each run. The row
        # number makes every key unique, so a fast unstable sort is exact.
        n = items.size
        if self.n_items * self.n_workers < (2**62) // max(n, 1):
            key = (items.astype(np.int64) * self.n_workers + workers) * n + np.arange(n)
            order = np.argsort(key)
            key = key[order] // n
        else:  # astronomically many ids: a stable sort does the same job
            key = items.astype(np.int64) * self.n_workers + workers
            order = np.argsort(key, kind="stable")
            key = key[order]
        last = np.ones(key.size, bool)
        last[:-1] = key[1:] != key[:-1]
        self.n_duplicates = int(key.size - np.count_nonzero(last))
        if duplicates == "last":
            order = order[last]
        self.items = items[order]
        self.workers = workers[order]
        self.labels = labels[order]
        self.n_answers = int(self.items.size)
        self._item_starts, self._item_present = _segments(self.items)

    def subset(self, keep: np.ndarray, *, n_workers: int | None = None,
               workers: np.ndarray | None = None) -> "Answers":
        """The answers where boolean ``keep`` is true, with the same sizes and
        no re-sort (optionally with other worker codes, e.g. all zeros)."""
        new = object.__new__(Answers)
        new.n_items, new.n_classes = self.n_items, self.n_classes
        new.n_workers = self.n_workers if n_workers is None else n_workers
        new.items = self.items[keep]
        new.workers = (self.workers if workers is None else workers)[keep]
        new.labels = self.labels[keep]
        new.n_rows = new.n_answers = int(new.items.size)
        new.n_duplicates = 0
        new._item_starts, new._item_present = _segments(new.items)
        return new

    # ------------------------------------------------------------ counts

    @cached_property
    def wl(self) -> np.ndarray:
        """``worker * n_classes + label`` per answer."""
        return self.workers * self.n_classes + self.labels

    @cached_property
    def il(self) -> np.ndarray:
        """``item * n_classes + label`` per answer (flat index into an (n_items, K) array)."""
        return self.items * self.n_classes + self.labels

    @cached_property
    def answers_per_item(self) -> np.ndarray:
        return np.bincount(self.items, minlength=self.n_items)

    @cached_property
    def answers_per_worker(self) -> np.ndarray:
        return np.bincount(self.workers, minlength=self.n_workers)

    @cached_property
    def votes(self) -> np.ndarray:
        """(n_items, K) count of each label per item."""
        return self.item_label_sum(None)

    # ------------------------------------------------------------ segment sums

    def item_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum per-answer ``values`` ((n,) or (n, K)) over each item's answers."""
        out = np.zeros((self.n_items,) + values.shape[1:])
        out[self._item_present] = np.add.reduceat(values, self._item_starts, axis=0)
        return out

    def item_label_sum(self, weights: np.ndarray | None) -> np.ndarray:
        """(n_items, K): per-answer ``weights`` added at (item, label)."""
        flat = np.bincount(self.il, weights=weights, minlength=self.n_items * self.n_classes)
        return flat.reshape(self.n_items, self.n_classes).astype(float, copy=False)

    def worker_sum(self, weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(self.workers, weights=weights, minlength=self.n_workers).astype(float, copy=False)

    def worker_label_sum(self, weights: np.ndarray | None) -> np.ndarray:
        """(n_workers, K): per-answer ``weights`` added at (worker, label)."""
        flat = np.bincount(self.wl, weights=weights, minlength=self.n_workers * self.n_classes)
        return flat.reshape(self.n_workers, self.n_classes).astype(float, copy=False)

    def worker_item_sum(self, item_matrix: np.ndarray) -> np.ndarray:
        """(n_workers, C): for each worker, the sum of ``item_matrix[item]``
        (n_items, C) over the items they answered."""
        per_item = self.answers_per_item
        return np.stack([np.bincount(self.workers, weights=np.repeat(item_matrix[:, c], per_item),
                                     minlength=self.n_workers) for c in range(item_matrix.shape[1])], axis=1)

    def item_worker_sum(self, worker_matrix: np.ndarray) -> np.ndarray:
        """(n_items, C): for each item, the sum of ``worker_matrix[worker]``
        (n_workers, C) over the workers who answered it."""
        out = np.zeros((self.n_items, worker_matrix.shape[1]))
        for c in range(worker_matrix.shape[1]):
            out[self._item_present, c] = np.add.reduceat(np.take(worker_matrix[:, c], self.workers),
                                                         self._item_starts)
        return out

    def at_answers(self, item_matrix: np.ndarray) -> np.ndarray:
        """``item_matrix[item, label]`` for each answer (e.g. posterior of the given label)."""
        return item_matrix.reshape(-1)[self.il]

    @cached_property
    def _scratch(self) -> np.ndarray:
        """One reusable (n_answers,) buffer: the EM loops gather into it
        instead of allocating (and page-faulting) fresh arrays each pass."""
        return np.empty(self.n_answers)

    @cached_property
    def _by_wl(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Answers grouped by (worker, label): items in that order, group
        starts and group keys. Small keys sort by radix (linear time)."""
        wl = self.wl
        n_keys = self.n_workers * self.n_classes
        small = wl.astype(np.uint16) if n_keys <= 2**16 else wl
        order = np.argsort(small, kind="stable")
        starts, present = _segments(wl[order])
        return self.items[order], starts, present

    def confusion_counts(self, post: np.ndarray) -> np.ndarray:
        """Soft confusion counts (n_workers, C, K): for every answer of worker w
        with label l, add the item's row ``post[item]`` (C latent columns,
        usually the K true classes) at [w, :, l]."""
        k = self.n_classes
        cols = post.shape[1]
        items_by_wl, starts, present = self._by_wl
        table = np.zeros((cols, self.n_workers * k))
        buf = self._scratch
        for c in range(cols):
            column = np.ascontiguousarray(post[:, c])
            gathered = np.take(column, items_by_wl, out=buf, mode="clip")  # codes are in range
            table[c, present] = np.add.reduceat(gathered, starts)
        return table.reshape(cols, self.n_workers, k).transpose(1, 0, 2)

    def log_likelihood_terms(self, log_confusion: np.ndarray) -> np.ndarray:
        """(n_items, C): sum over each item's answers of log P(label | latent
        column c) under per-worker ``log_confusion`` of shape (n_workers, C, K)."""
        cols = log_confusion.shape[1]
        table = np.ascontiguousarray(log_confusion.transpose(1, 0, 2)).reshape(cols, -1)
        out = np.zeros((cols, self.n_items))  # filled row by row, returned as its (n_items, C) view
        buf = self._scratch
        for c in range(cols):
            gathered = np.take(table[c], self.wl, out=buf, mode="clip")  # codes are in range
            out[c, self._item_present] = np.add.reduceat(gathered, self._item_starts)
        return out.T
