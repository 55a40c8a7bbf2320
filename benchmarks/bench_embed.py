"""Embedding throughput: end to end (read items from the workspace, embed,
store float32 shards) against the bare model on the same inputs held in
memory, measured side by side in one run, alternating, as a ratio.

Text: real sentences (sentiment_polarity items) with all-MiniLM-L6-v2.
Images: real MNIST digits (PNG files imported into the workspace) with
EfficientNet-Lite0; "bare" is the model on the same PNG bytes in memory
(decode + resize + forward), and we also report forward-only on tensors
prepared beforehand, the strictest reading of "the bare model".

Bar: end to end >= 80 % of the bare model's throughput.

    python benchmarks/bench_embed.py [--texts 2000] [--images 600] [--repeat 2]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import machine  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def _texts(n: int) -> list[str]:
    import pandas as pd

    df = pd.read_csv(DATA / "crowd" / "sentiment_polarity" / "items.csv")
    return df["text"].astype(str).tolist()[:n]


def _pngs(n: int) -> list[bytes]:
    from PIL import Image

    out = []
    with gzip.open(DATA / "images" / "mnist_5k" / "mnist_5k.csv.gz", "rt") as fh:
        for line, _ in zip(fh, range(n)):
            px = np.asarray([int(v) for v in line.split(",")[:784]], np.uint8).reshape(28, 28)
            buf = io.BytesIO()
            Image.fromarray(px, mode="L").save(buf, format="PNG")
            out.append(buf.getvalue())
    return out


def _bare(embedder, inputs, chunk=256) -> float:
    t = time.perf_counter()
    for i in range(0, len(inputs), chunk):
        embedder.embed(inputs[i:i + chunk])
    return len(inputs) / (time.perf_counter() - t)


def _forward_only(embedder, inputs, chunk=256) -> float:
    prepared = [embedder.preprocess(inputs[i:i + chunk]) for i in range(0, len(inputs), chunk)]
    t = time.perf_counter()
    for x in prepared:
        embedder.forward(x)
    return len(inputs) / (time.perf_counter() - t)


def _end_to_end(embedder, make_dataset) -> float:
    from assay.workspace import Workspace

    with tempfile.TemporaryDirectory() as d:
        ws = Workspace(Path(d) / "ws")
        ds, n = make_dataset(ws, Path(d))
        t = time.perf_counter()
        r = ws.embed(ds["id"], embedder=embedder, progress=False)
        dt = time.perf_counter() - t
        assert r["embedded"] == n, r
        ws.close()
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--only", choices=["text", "image"])
    args = ap.parse_args()
    import pandas as pd

    from assay.learn import get_embedder

    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": {}}

    if args.only in (None, "text"):
        texts = _texts(args.texts)
        emb = get_embedder()
        emb.embed(texts[:64])  # warm up

        def text_ds(ws, d):
            ds = ws.create_dataset("t")
            ws.import_dataframe(ds["id"], pd.DataFrame({"text": texts}))
            return ds, len(set(texts))

        bare, e2e = [], []
        for _ in range(args.repeat):
            bare.append(_bare(emb, texts, chunk=emb.batch_size))
            e2e.append(_end_to_end(emb, text_ds))
        results["runs"]["text"] = {"model": emb.name, "n": len(texts), "bare_per_s": bare, "end_to_end_per_s": e2e,
                                   "ratio": statistics.median(e2e) / statistics.median(bare)}

    if args.only in (None, "image"):
        pngs = _pngs(args.images)
        emb = get_embedder(kind="image")
        emb.embed(pngs[:32])

        def image_ds(ws, d):
            folder = d / "imgs"
            folder.mkdir()
            for i, b in enumerate(pngs):
                (folder / f"{i:05d}.png").write_bytes(b)
            ds = ws.create_dataset("i")
            ws.import_file(ds["id"], folder)
            return ds, len(set(pngs))

        bare, fwd, e2e = [], [], []
        for _ in range(args.repeat):
            bare.append(_bare(emb, pngs, chunk=emb.batch_size))
            fwd.append(_forward_only(emb, pngs, chunk=emb.batch_size))
            e2e.append(_end_to_end(emb, image_ds))
        results["runs"]["image"] = {"model": emb.name, "n": len(pngs), "bare_per_s": bare,
                                    "forward_only_per_s": fwd, "end_to_end_per_s": e2e,
                                    "ratio": statistics.median(e2e) / statistics.median(bare),
                                    "ratio_vs_forward_only": statistics.median(e2e) / statistics.median(fwd)}
    print(json.dumps(results, indent=2))
    print()
    print("| input | model | items | bare model items/s | end to end items/s | end to end / bare |")
    print("|---|---|---|---|---|---|")
    for k, r in results["runs"].items():
        line = (f"| {k} | {r['model']} | {r['n']} | {statistics.median(r['bare_per_s']):.1f} | "
                f"{statistics.median(r['end_to_end_per_s']):.1f} | {r['ratio']:.2f} |")
        print(line)
        if "forward_only_per_s" in r:
            print(f"| {k} (forward only) | {r['model']} | {r['n']} | {statistics.median(r['forward_only_per_s']):.1f} | "
                  f"{statistics.median(r['end_to_end_per_s']):.1f} | {r['ratio_vs_forward_only']:.2f} |")


if __name__ == "__main__":
    main()
