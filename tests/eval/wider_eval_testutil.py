"""Helpers for the WIDER evaluation tests: synthetic predictions for a
GroundTruth, and a tiny ground-truth folder written directly with
scipy.io.savemat in the official structure (not with tasklle's own writer)."""
import numpy as np


def generate_predictions(gt, n_fp=30, seed=0, p_detect=0.8):
    """{(event, name): (K, 5) x y w h score} for every image of gt, made with
    vectorised NumPy: jittered copies of most faces (counted and ignored
    alike), exact copies of some (IoU 1, duplicates in the gt give ties),
    boxes with w or h <= 0, random false positives, integer pixels (exact
    IoU values such as 0.5 happen), partly quantised scores (ties), rows
    shuffled inside each image."""
    rng = np.random.default_rng(seed)
    n_img = gt.n_images
    boxes = np.asarray(gt.boxes)
    g = len(boxes)
    img_of_box = np.repeat(np.arange(n_img), np.diff(gt.offsets))
    hit = rng.random(g) < p_detect
    jit = boxes.copy()
    scale = np.maximum(boxes[:, 2:4], 1)
    jittered = rng.random(g) < 0.7
    jit[jittered, :2] += rng.normal(0, 0.12, (jittered.sum(), 2)) * scale[jittered]
    jit[jittered, 2:] *= np.exp(rng.normal(0, 0.12, (jittered.sum(), 2)))
    jit = np.round(jit)
    degenerate = rng.random(g) < 0.01
    jit[degenerate, 2] = -rng.integers(0, 3, degenerate.sum())
    s_true = rng.beta(5, 2, g)
    n_false = rng.integers(0, n_fp + 1, n_img)
    img_fp = np.repeat(np.arange(n_img), n_false)
    f = len(img_fp)
    fp = np.round(np.stack([rng.uniform(0, 1000, f), rng.uniform(0, 800, f), rng.uniform(2, 150, f),
                            rng.uniform(2, 150, f)], 1))
    s_fp = rng.beta(2, 5, f)
    allb = np.concatenate([jit[hit], fp])
    alls = np.concatenate([s_true[hit], s_fp])
    alli = np.concatenate([img_of_box[hit], img_fp])
    alls = np.where(rng.random(len(alls)) < 0.3, np.round(alls, 2), alls)
    perm = rng.permutation(len(alli))
    order = perm[np.argsort(alli[perm], kind="stable")]
    rows = np.concatenate([allb[order], alls[order, None]], 1)
    cuts = np.searchsorted(alli[order], np.arange(n_img + 1))
    keys = gt.keys()
    return {keys[i]: rows[cuts[i]:cuts[i + 1]] for i in range(n_img)}


def synthetic_gt(n_images=3226, n_events=61, seed=0):
    """A random GroundTruth shaped like WIDER val (faces 4..300 px; easy >= 50 px, medium >= 25 px, hard all)."""
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 25, n_images)  # some images without any box
    offsets = np.concatenate([[0], np.cumsum(faces)])
    g = int(offsets[-1])
    xy = rng.uniform(0, 900, (g, 2))
    wh = np.exp(rng.uniform(np.log(4), np.log(300), (g, 2)))
    boxes = np.round(np.concatenate([xy, wh], 1))
    events = [f"{k}--Event" for k in range(n_events)]
    event_index = np.sort(rng.integers(0, n_events, n_images))
    names = [f"{event_index[i]}_img_{i}" for i in range(n_images)]
    keep = {}
    for s, min_side in (("easy", 50), ("medium", 25), ("hard", 0)):
        vals, lens = [], []
        for i in range(n_images):
            b = boxes[offsets[i]:offsets[i + 1]]
            k = np.nonzero(np.minimum(b[:, 2], b[:, 3]) >= min_side)[0] + 1
            vals.append(k)
            lens.append(len(k))
        keep[s] = (np.concatenate(vals), np.concatenate([[0], np.cumsum(lens)]))
    from tasklle.data.wider_format import GroundTruth

    return GroundTruth(events, event_index, names, boxes, offsets, keep, source="synthetic")


def _cell(items):
    c = np.empty((len(items), 1), dtype=object)
    for k, it in enumerate(items):
        c[k, 0] = it
    return c


def _idx(k):
    # like the official files: (k, 1) uint8, (0, 0) when empty
    return np.asarray(k, dtype=np.uint8).reshape(-1, 1) if len(k) else np.zeros((0, 0), dtype=np.uint8)


# The tiny hand-computed case (see test_hand_computed_tiny_case).
TINY_EVENTS = [
    ("0--A", [
        ("a1", [[10, 10, 20, 20], [100, 100, 20, 20], [200, 200, 5, 5]],
         {"easy": [1], "medium": [1, 2], "hard": [1, 2, 3]}),
        ("a2", [[0, 0, 0, 0]], {"easy": [], "medium": [], "hard": []}),  # a zero-face image
    ]),
    ("1--B", [
        ("b1", [[50, 50, 30, 30], [0, 0, 10, 10]], {"easy": [1], "medium": [1], "hard": [1, 2]}),
        ("b2", [[5, 5, 40, 40]], {"easy": [1], "medium": [1], "hard": [1]}),
    ]),
]


def write_tiny_gt(folder, events=TINY_EVENTS):
    """wider_face_val.mat + wider_{easy,medium,hard}_val.mat with scipy.io.savemat."""
    import scipy.io

    folder.mkdir(parents=True, exist_ok=True)
    ev_names = _cell([e for e, _ in events])
    files = _cell([_cell([n for n, _, _ in imgs]) for _, imgs in events])
    boxes = _cell([_cell([np.asarray(b, dtype=np.int32).reshape(-1, 4) for _, b, _ in imgs]) for _, imgs in events])
    base = {"event_list": ev_names, "file_list": files, "face_bbx_list": boxes}
    scipy.io.savemat(str(folder / "wider_face_val.mat"), base)
    for s in ("easy", "medium", "hard"):
        gl = _cell([_cell([_idx(k[s]) for _, _, k in imgs]) for _, imgs in events])
        scipy.io.savemat(str(folder / f"wider_{s}_val.mat"), {**base, "gt_list": gl})
    return folder
