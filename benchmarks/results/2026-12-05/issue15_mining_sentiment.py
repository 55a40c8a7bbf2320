import json, sys, time
from pathlib import Path
from assay.simulation.mine import simulate_mine
c = Path("/tmp/assay-ml-cache")
with open(sys.argv[1], "w") as out:
    for cls in ("0", "1"):
        for s in (0, 1, 2):
            t0 = time.perf_counter()
            r = simulate_mine(c / "sentiment_polarity.npy", c / "sentiment_polarity.ids.txt",
                              Path("/work/shared/data/crowd/sentiment_polarity/truth.csv"), cls, rare_share=0.01, seeds=5, seed=s)
            r["wall_s"] = round(time.perf_counter() - t0, 2); r["features"] = "sentiment_polarity all-MiniLM-L6-v2"
            out.write(json.dumps(r) + "\n"); out.flush()
            print(cls, s, r["labels_used"], r["rare_items"], round(r["ratio"], 2), r["found_share"], round(r["random_ratio"], 1), flush=True)
