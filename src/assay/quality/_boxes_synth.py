"""A synthetic box crowd with known skills, for tests and benchmarks of
:mod:`assay.quality.boxes`.

Images (1280x720) hold a Poisson number of objects (pedestrian-shaped:
height about 2.4 times the width, log-normal sizes). Each image is answered
by ``per_item`` annotators drawn from a pool; annotator ``w`` boxes each
object with probability ``recall[w]`` (lower on the objects marked hard),
moves each edge by normal noise of ``jitter[w]`` times the box's width or
height, and adds a Poisson(``false_rate[w]``) number of boxes where nothing is.
"""

from __future__ import annotations

import numpy as np

WIDTH, HEIGHT = 1280.0, 720.0


def synthetic_crowd(n_items: int, *, n_workers: int = 40, per_item: int = 7, objects: float = 1.5,
                    hard_share: float = 0.15, seed: int = 0, label: str = "pedestrian"):
    """Returns ``(rows, truth, skills)``: answer rows, truth rows ``{"item", "boxes"}`` and
    the annotators' true ``{"recall", "false_rate", "jitter"}`` arrays (worker ``w`` is ``f"w{w}"``)."""
    rng = np.random.default_rng(seed)
    skills = {
        "recall": rng.uniform(0.55, 0.98, n_workers),
        "false_rate": rng.uniform(0.0, 0.5, n_workers),
        "jitter": rng.uniform(0.02, 0.15, n_workers),
    }
    n_obj = rng.poisson(objects, n_items)
    obj_item = np.repeat(np.arange(n_items), n_obj)
    m = len(obj_item)
    w = np.minimum(np.exp(rng.normal(np.log(40.0), 0.5, m)), 250.0)
    h = w * rng.uniform(2.0, 2.8, m)
    x1 = rng.uniform(0, WIDTH - w)
    y1 = rng.uniform(0, HEIGHT - np.minimum(h, HEIGHT - 1))
    obj = np.column_stack([x1, y1, x1 + w, np.minimum(y1 + h, HEIGHT)])
    hard = rng.random(m) < hard_share
    # who answers each image
    who = np.argsort(rng.random((n_items, n_workers)), axis=1)[:, :per_item]
    # object boxes: every (object, annotator of its image) pair, kept with the annotator's recall
    pair_obj = np.repeat(np.arange(m), per_item)
    pair_w = who[obj_item].ravel()
    p = skills["recall"][pair_w] * np.where(hard[pair_obj], 0.5, 1.0)
    drawn = rng.random(len(pair_obj)) < p
    pair_obj, pair_w = pair_obj[drawn], pair_w[drawn]
    size = (obj[pair_obj, 2:] - obj[pair_obj, :2])[:, [0, 1, 0, 1]]
    boxes = obj[pair_obj] + rng.normal(0, 1, (len(pair_obj), 4)) * size * skills["jitter"][pair_w, None]
    box_item = obj_item[pair_obj]
    # false boxes
    ans_item = np.repeat(np.arange(n_items), per_item)
    ans_w = who.ravel()
    n_false = rng.poisson(skills["false_rate"][ans_w])
    f_item, f_w = np.repeat(ans_item, n_false), np.repeat(ans_w, n_false)
    fw = np.minimum(np.exp(rng.normal(np.log(40.0), 0.5, len(f_item))), 250.0)
    fx, fy = rng.uniform(0, WIDTH - fw), rng.uniform(0, HEIGHT - 2.4 * fw)
    false = np.column_stack([fx, fy, fx + fw, fy + 2.4 * fw])
    all_boxes = np.concatenate([boxes, false])
    all_boxes[:, [0, 2]] = np.sort(all_boxes[:, [0, 2]], axis=1)
    all_boxes[:, [1, 3]] = np.sort(all_boxes[:, [1, 3]], axis=1)
    all_boxes[:, 2:] = np.maximum(all_boxes[:, 2:], all_boxes[:, :2] + 1.0)
    key = np.concatenate([box_item * n_workers + pair_w, f_item * n_workers + f_w])
    order = np.argsort(key, kind="stable")
    key, all_boxes = key[order], np.round(all_boxes[order], 2).tolist()
    starts = np.searchsorted(key, ans_item * n_workers + ans_w, side="left").tolist()
    ends = np.searchsorted(key, ans_item * n_workers + ans_w, side="right").tolist()
    rows = [{"item": f"i{i}", "worker": f"w{a}", "boxes": [b + [label] for b in all_boxes[s:e]]}
            for i, a, s, e in zip(ans_item.tolist(), ans_w.tolist(), starts, ends, strict=True)]
    truth_boxes: list[list] = [[] for _ in range(n_items)]
    for i, b in zip(obj_item.tolist(), obj.tolist(), strict=True):
        truth_boxes[i].append(b + [label])
    truth = [{"item": f"i{i}", "boxes": b} for i, b in enumerate(truth_boxes)]
    return rows, truth, skills
