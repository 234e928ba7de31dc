"""A small DARK FACE tree in the release layout for the tests: ``image/<n>.png``
(dark noisy scenes with brighter face-like blobs) and ``label/<n>.txt`` written as
the release writes them (a count line, then ``x1 y1 x2 y2`` integers), written
directly here, not with tasklle's writer. Image 2 has no face (count 0)."""
from pathlib import Path

import numpy as np
from PIL import Image


def make_tree(root, n_images=4, size=(96, 128), seed=0):
    """Write the tree; returns {name: (N, 4) int x1 y1 x2 y2}."""
    root = Path(root)
    (root / "image").mkdir(parents=True, exist_ok=True)
    (root / "label").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    labels = {}
    for k in range(1, n_images + 1):
        img = (rng.random((h, w, 3)) * 0.08 + 0.02)
        n_faces = 0 if k == 2 else int(rng.integers(1, 4))
        boxes = []
        for _ in range(n_faces):
            s = int(rng.integers(14, 30))
            x1, y1 = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
            img[y1:y1 + s, x1:x1 + s] += 0.15
            boxes.append((x1, y1, x1 + s, y1 + s))
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(root / "image" / f"{k}.png")
        lines = [str(len(boxes))] + [f"{a} {b} {c} {d}" for a, b, c, d in boxes]
        (root / "label" / f"{k}.txt").write_text("\n".join(lines) + "\n")
        labels[str(k)] = np.array(boxes, dtype=np.int64).reshape(-1, 4)
    return labels
