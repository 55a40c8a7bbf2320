"""Vectors on disk: the float32 arrays that embeddings produce, the source
of truth for every index built over them (indexes are rebuildable caches).

Layout: ``<workspace>/vectors/<space>/`` per embedding space (one model's
vectors), holding ``meta.json`` (model name, dimension, kind) and append-only
shards ``NNNNNN.vec.npy`` (n × d float32) with ``NNNNNN.ids.npy`` (n item
ids, int64). A shard is complete once its ids file exists (written last,
atomically renamed), so a crash mid-write leaves no half shard behind. An
item embedded twice keeps its latest vector.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from pathlib import Path

import numpy as np

from assay.errors import InvalidInput, NotFound

_SPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def space_name(model: str) -> str:
    """A folder-safe name for a model name or path."""
    base = Path(model).name if os.sep in model or "/" in model else model
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "model"
    return slug[:128]


class VectorStore:
    """Append-only float32 shards per embedding space under ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    def _dir(self, space: str) -> Path:
        if not _SPACE.fullmatch(space):
            raise InvalidInput(f"bad vector space name {space!r}")
        return self.root / space

    def spaces(self) -> list[dict]:
        if not self.root.is_dir():
            return []
        out = []
        for d in sorted(self.root.iterdir()):
            if (d / "meta.json").is_file():
                out.append({"space": d.name, **json.loads((d / "meta.json").read_text()), "count": len(self.ids(d.name))})
        return out

    def meta(self, space: str) -> dict:
        f = self._dir(space) / "meta.json"
        if not f.is_file():
            raise NotFound(f"no vectors in space {space!r}; embed the dataset first")
        return json.loads(f.read_text())

    def _shards(self, space: str) -> list[Path]:
        d = self._dir(space)
        if not d.is_dir():
            return []
        return sorted(d.glob("[0-9][0-9][0-9][0-9][0-9][0-9].ids.npy"))

    def shard_paths(self, space: str) -> list[tuple[Path, Path]]:
        """The complete shards of ``space`` in the order written: ``(ids file, vectors file)``."""
        return [(f, Path(str(f)[: -len(".ids.npy")] + ".vec.npy")) for f in self._shards(space)]

    def ids(self, space: str) -> np.ndarray:
        """Every item id with a vector in ``space`` (unique, sorted)."""
        parts = [np.load(f) for f in self._shards(space)]
        if not parts:
            return np.zeros(0, np.int64)
        return np.unique(np.concatenate(parts))

    def add(self, space: str, ids: np.ndarray, vectors: np.ndarray, meta: dict) -> None:
        """Append one shard. ``meta`` (model, dim, kind) must match the space's."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0]:
            raise InvalidInput("vectors must be (n, d) with one id per row")
        if not np.isfinite(vectors).all():
            raise InvalidInput("vectors hold NaN or infinite values")
        d = self._dir(space)
        with self._lock:
            d.mkdir(parents=True, exist_ok=True)
            mfile = d / "meta.json"
            meta = {**meta, "dim": int(vectors.shape[1])}
            if mfile.is_file():
                old = json.loads(mfile.read_text())
                if old.get("dim") != meta["dim"] or old.get("model") != meta.get("model"):
                    raise InvalidInput(f"space {space!r} holds {old.get('model')} vectors of dimension "
                                       f"{old.get('dim')}, not {meta.get('model')} of {meta['dim']}")
            else:
                tmp = d / "meta.json.tmp"
                tmp.write_text(json.dumps(meta))
                os.replace(tmp, mfile)
            shards = self._shards(space)
            seq = int(shards[-1].name[:6]) + 1 if shards else 1
            stem = d / f"{seq:06d}"
            for suffix, arr in ((".vec.npy", vectors), (".ids.npy", ids)):  # ids last: marks it complete
                tmp = Path(str(stem) + suffix + ".tmp")
                with open(tmp, "wb") as fh:
                    np.save(fh, arr)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, Path(str(stem) + suffix))

    def load(self, space: str, ids=None) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)``: all of the space's vectors (sorted by id), or
        those of ``ids`` in the order given (a missing id is an error)."""
        all_ids, rows = [], []
        for f in self._shards(space):
            i = np.load(f)
            v = np.load(str(f)[: -len(".ids.npy")] + ".vec.npy", mmap_mode="r")
            all_ids.append(i)
            rows.append(v)
        if not all_ids:
            dim = self.meta(space)["dim"]  # NotFound for a space nobody embedded into
            if ids is not None and len(ids):
                raise NotFound(f"no vectors in space {space!r} for {len(ids)} item(s)")
            return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
        cat_ids = np.concatenate(all_ids)
        # the latest vector of an item wins: keep the last occurrence
        order = np.arange(cat_ids.size)
        rev_ids = cat_ids[::-1]
        uniq, first_in_rev = np.unique(rev_ids, return_index=True)
        pick = order[::-1][first_in_rev]
        if ids is None:
            want_pos = pick
            out_ids = uniq
        else:
            ids = np.asarray(ids, dtype=np.int64)
            loc = np.searchsorted(uniq, ids)
            ok = (loc < uniq.size) & (uniq[np.minimum(loc, uniq.size - 1)] == ids)
            if not ok.all():
                raise NotFound(f"{int((~ok).sum())} item(s) have no vector in space {space!r} "
                               f"(first: {int(ids[~ok][0])}); embed them first")
            want_pos = pick[loc]
            out_ids = ids
        starts = np.cumsum([0] + [len(i) for i in all_ids])
        dim = rows[0].shape[1]
        out = np.empty((want_pos.size, dim), np.float32)
        shard_of = np.searchsorted(starts, want_pos, side="right") - 1
        for s in np.unique(shard_of):
            sel = shard_of == s
            out[sel] = rows[s][want_pos[sel] - starts[s]]
        return out_ids, out

    def drop(self, space: str) -> None:
        d = self._dir(space)
        if d.is_dir():
            shutil.rmtree(d)
