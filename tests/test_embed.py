"""Embeddings (assay.learn, the ml extra): the real offline models, stored
float32 vectors, incremental runs, and the errors users see."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from assay.errors import InvalidInput, NotFound
from assay.learn import Embedder, get_embedder, register_embedder
from assay.store.vectors import VectorStore
from factories import image_bytes, mnist_digits, text_dataset


@pytest.fixture(scope="module")
def minilm():
    return get_embedder()


@pytest.mark.slow  # 11 s: loads the MiniLM model
def test_text_embeddings_are_stored_incremental_and_meaningful(tmp_path, minilm):
    from assay.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    texts = ["A wonderful, moving film.", "An awful, boring movie.", "The cat sat on the mat.",
             "A truly wonderful and touching film.", "Dogs chase cats in the garden."]
    ds = text_dataset(ws, "t", texts)
    r = ws.embed(ds["id"], embedder=minilm, progress=False)
    assert (r["embedded"], r["already"], r["dim"], r["space"]) == (5, 0, 384, "all-MiniLM-L6-v2")
    ids, v = ws.vectors_for(r["space"])
    assert v.dtype == np.float32 and v.shape == (5, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    sim = v @ v.T
    assert sim[0, 3] > sim[0, 2] and sim[0, 3] > sim[0, 4]  # the two "wonderful film" reviews are nearest
    # the same text embeds the same wherever it comes from
    assert np.allclose(minilm.embed([texts[1]])[0], v[1], atol=1e-5)
    # a second run embeds nothing; new items only are embedded next
    assert ws.embed(ds["id"], progress=False)["embedded"] == 0
    ws.import_dataframe(ds["id"], __import__("pandas").DataFrame({"text": ["Brand new sentence."]}))
    r2 = ws.embed(ds["id"], embedder=minilm, progress=False)
    assert (r2["embedded"], r2["already"]) == (1, 5)
    ids2, v2 = ws.vectors_for(r["space"])
    assert len(ids2) == 6 and np.array_equal(v2[:5], v)
    some, vs = ws.vectors_for(r["space"], [int(ids2[5]), int(ids2[0])])
    assert np.array_equal(vs[1], v[0])


def test_image_embeddings_from_real_digits(tmp_path, shared_data):
    from assay.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    digits = mnist_digits(shared_data, 24)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, (im, label) in enumerate(digits):
        (folder / f"{i:03d}_{label}.png").write_bytes(image_bytes(im, "PNG"))
    ds = ws.create_dataset("digits")
    ws.import_file(ds["id"], folder)
    r = ws.embed(ds["id"], progress=False)
    assert (r["model"], r["dim"], r["embedded"]) == ("efficientnet-lite0", 1280, 24)
    ids, v = ws.vectors_for(r["space"])
    assert v.shape == (24, 1280) and np.isfinite(v).all() and v.std() > 0
    # nearest neighbours share the digit more often than chance (1/10)
    labels = np.array([lab for _, lab in digits])
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    assert (labels[sim.argmax(axis=1)] == labels).mean() > 0.3


def test_your_own_embedder_and_bad_models(tmp_path):
    from assay.workspace import Workspace

    class Lengths(Embedder):
        name, kind, dim = "lengths", "text", 2

        def embed(self, batch):
            return np.array([[len(t), t.count(" ")] for t in batch], np.float32)

    register_embedder("lengths", Lengths)
    ws = Workspace(tmp_path / "ws")
    ds = text_dataset(ws, "t", ["a b c", "hello"])
    r = ws.embed(ds["id"], model="lengths", progress=False)
    assert r["space"] == "lengths"
    assert ws.vectors_for("lengths")[1].tolist() == [[5.0, 2.0], [5.0, 0.0]]
    with pytest.raises(InvalidInput, match="offline"):
        get_embedder(str(tmp_path / "no-such-model"))
    with pytest.raises(NotFound):
        ws.vectors_for("never-embedded")


def test_vector_store_keeps_the_latest_vector_and_refuses_bad_rows(tmp_path):
    vs = VectorStore(tmp_path)
    meta = {"model": "m", "kind": "text"}
    vs.add("m", np.array([3, 1]), np.array([[1, 1], [2, 2]], np.float32), meta)
    vs.add("m", np.array([3]), np.array([[9, 9]], np.float32), meta)
    ids, v = vs.load("m")
    assert ids.tolist() == [1, 3] and v.tolist() == [[2, 2], [9, 9]]
    with pytest.raises(InvalidInput, match="dimension"):
        vs.add("m", np.array([4]), np.zeros((1, 3), np.float32), meta)
    with pytest.raises(InvalidInput, match="NaN"):
        vs.add("m", np.array([4]), np.array([[np.nan, 0]], np.float32), meta)
    with pytest.raises(NotFound, match="embed them first"):
        vs.load("m", [1, 2])
    # a crash that left a temporary file behind leaves the store readable
    (tmp_path / "m" / "000009.vec.npy.tmp").write_bytes(b"garbage")
    assert vs.load("m")[0].tolist() == [1, 3]


def test_missing_ml_extra_names_the_extra():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['sentence_transformers'] = None\n"
            "from assay.learn import get_embedder\n"
            "try:\n    get_embedder()\nexcept Exception as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "InvalidInput" in out.stdout and "pip install 'assay[ml]'" in out.stdout, out.stdout + out.stderr
