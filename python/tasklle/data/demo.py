"""The built-in demo dataset: a small WIDER-format face detection set made from
data that ships inside scikit-image and scikit-learn (no download, ever).

What it is made of:

- faces: the 100 real face crops of scikit-image's LFW subset
  (``skimage.data.lfw_subset()``: 200 grey 25x25 crops, the first 100 faces,
  the last 100 non-faces). Faces with index % 5 == 4 (20 identities) are used
  only in val, the other 80 only in train, so val measures generalisation to
  unseen faces.
- distractors: the 100 non-face crops, pasted exactly like faces but never
  annotated (hard negatives).
- backgrounds: random crops and rescales of real photographs shipped with
  scikit-image (astronaut and camera restricted to regions without their
  real human faces) and scikit-learn (china, flower).

Each face is rescaled to a box 8..120 px high (log-uniform within the
image's regime), 0.75..0.92 as wide as high, tinted from grey to a plausible
skin tone, given a random contrast and brightness, blurred (the ``blur``
attribute says how much), and pasted with feathered (soft) edges. The
annotation box is the pasted crop region ``x y w h`` (integers).
Image regimes (the WIDER "events"): ``0--Crowd`` many small faces, ``1--Group``
a handful of mid-size faces, ``2--Portrait`` one to three large faces,
``3--Mixed`` anything from 8 to 120 px; 12 % of Mixed images (about 4 % of
all) have no face. Faces are never larger than half the short image side.

Attributes: blur 0/1/2 from the applied blur (none, 60 % of faces;
Gaussian sigma 2-4 % of the face height but >= 0.5 px, 28 %; 5-8 % but
>= 0.9 px, 12 %); illumination 1 when the contrast or brightness change is
extreme; invalid 1 for the small faces (< 12 px) that were made
unrecognisable with extra heavy blur (about a quarter of them); expression,
occlusion and pose 0.

Difficulty (the evaluation lists ``wider_{easy,medium,hard}_val.mat``), by
face box height, invalid faces excluded from every setting (they are
"ignore" for the evaluator and for ``WiderFace``):

- easy: height >= 40 px (``EASY_MIN_HEIGHT``),
- medium: height >= 20 px (``MEDIUM_MIN_HEIGHT``),
- hard: all valid faces.

The tree (``ROOT/WIDER_{train,val}/images/<event>/<name>.jpg``,
``ROOT/wider_face_split/*``) is built once per parameter set, in a temporary
folder renamed into place when complete, so a half-built tree is never used;
``manifest.json`` records the parameters. The output is deterministic for a
seed: the same parameters give the same bytes (given the same Pillow/libjpeg).
Zero-face images are written in each official spelling: count 0 plus an
all-zero row in the train txt, count 1 with an all-zero row in the val txt.
The val ``.mat`` files follow the real ones exactly (checked against them by
the tests): event_list (E,1) cell of char, file_list (E,1) cell of (M,1)
cells of char, face_bbx_list (E,1) cell of (M,1) cells of (K,4) int32 x y w h
(a zero-face image has one all-zero row, as in the real files), the six
``*_label_list`` (K,1) uint8, and in ``wider_{easy,medium,hard}_val.mat``
gt_list (E,1) cell of (M,1) cells of (k,1) uint8 1-based indices ((0,0) when
none count).
"""
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .demo_render import DEFAULT_FACE_SIZE, DEFAULT_IMAGE_SIZE, EVENTS, render_image  # noqa: F401  (public here)
from .wider_format import format_annotation_record, write_ground_truth

#: Bump when the generator changes so cached trees are rebuilt.
DEMO_VERSION = 2
EASY_MIN_HEIGHT = 40
MEDIUM_MIN_HEIGHT = 20
_MANIFEST = "manifest.json"
_MAT_CREATOR = "tasklle.data.demo"  # after "Created by:" in the .mat headers


# ----------------------------------------------------------------------------------------------
# Writing


def _difficulty_lists(faces):
    """1-based indices of the faces counted in easy, medium, hard."""
    out = {"easy": [], "medium": [], "hard": []}
    for k, f in enumerate(faces, start=1):
        if f["attributes"][3] == 1:
            continue
        h = f["box"][3]
        out["hard"].append(k)
        if h >= MEDIUM_MIN_HEIGHT:
            out["medium"].append(k)
        if h >= EASY_MIN_HEIGHT:
            out["easy"].append(k)
    return out


def _txt_block(relpath, faces, split):
    # Official spellings of an image without faces: train "0" + zero row, val "1" + zero row.
    return format_annotation_record(relpath, [f["box"] for f in faces], [f["attributes"] for f in faces],
                                    zero_face_count=0 if split == "train" else 1)


def _write_ground_truth(split_dir, rendered):
    """The val ``.mat`` files through the one writer, exactly like the real ones
    (see the module doc): int32 boxes, uint8 labels and indices, and one
    all-zero row for an image without faces."""
    images, attributes = [], []
    keep = {s: [] for s in ("easy", "medium", "hard")}
    for event, name, _, faces in rendered:
        if faces:
            boxes = np.asarray([f["box"] for f in faces], dtype=np.int32).reshape(-1, 4)
            attrs = np.asarray([f["attributes"] for f in faces], dtype=np.uint8).reshape(-1, 6)
        else:
            boxes, attrs = np.zeros((1, 4), dtype=np.int32), np.zeros((1, 6), dtype=np.uint8)
        images.append((event, name, boxes))
        attributes.append(attrs)
        for s, idx in _difficulty_lists(faces).items():
            keep[s].append(idx)
    write_ground_truth(split_dir, images, keep, attributes=attributes, creator=_MAT_CREATOR)


def _params(seed, n_train, n_val, image_size, face_size, quality):
    return {"version": DEMO_VERSION, "seed": int(seed), "n_train": int(n_train), "n_val": int(n_val),
            "image_size": [int(image_size[0]), int(image_size[1])],
            "face_size": [int(face_size[0]), int(face_size[1])], "quality": int(quality)}


def _params_tag(params):
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return f"v{params['version']}-seed{params['seed']}-{digest}"


def default_cache_dir():
    """``$TASKLLE_CACHE/demo`` if set, else ``~/.cache/tasklle/demo``."""
    base = os.environ.get("TASKLLE_CACHE")
    base = Path(base).expanduser() if base else Path.home() / ".cache" / "tasklle"
    return base / "demo"


def _read_manifest(root):
    try:
        with open(Path(root) / _MANIFEST, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_tree(dst, params, progress_bar):
    from ..progress import progress

    seed = params["seed"]
    counts = {}
    for split, n in (("train", params["n_train"]), ("val", params["n_val"])):
        rendered = []
        it = range(n)
        if progress_bar:
            it = progress(it, desc=f"demo {split}", unit="img")
        for index in it:
            image, event, faces = render_image(seed, split, index, params["image_size"], params["face_size"])
            eid, ename = event.split("--", 1)
            name = f"{eid}_{ename}_demo_{split}_{index:05d}"
            rendered.append((event, name, image, faces))
        # Group by event (the official files list images event by event).
        rendered.sort(key=lambda r: (EVENTS.index(r[0]), r[1]))
        from PIL import Image

        txt = []
        by_event = {}
        for event, name, image, faces in rendered:
            folder = dst / f"WIDER_{split}" / "images" / event
            folder.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format="JPEG", quality=params["quality"])
            (folder / f"{name}.jpg").write_bytes(buf.getvalue())
            txt.append(_txt_block(f"{event}/{name}.jpg", faces, split))
            by_event.setdefault(event, []).append((name, faces))
        split_dir = dst / "wider_face_split"
        split_dir.mkdir(parents=True, exist_ok=True)
        (split_dir / f"wider_face_{split}_bbx_gt.txt").write_text("".join(txt), encoding="utf-8")
        faces_all = [f for *_, faces in rendered for f in faces]
        lists = [_difficulty_lists(faces) for *_, faces in rendered]
        counts[split] = {
            "images": len(rendered),
            "images_without_faces": sum(1 for *_, faces in rendered if not faces),
            "faces": len(faces_all),
            "invalid": sum(f["attributes"][3] for f in faces_all),
            "easy": sum(len(d["easy"]) for d in lists),
            "medium": sum(len(d["medium"]) for d in lists),
            "hard": sum(len(d["hard"]) for d in lists),
            "events": {ev: len(v) for ev, v in sorted(by_event.items())},
        }
        if split == "val":
            _write_ground_truth(split_dir, rendered)
    manifest = {
        "format": "tasklle WIDER FACE demo dataset",
        "params": params,
        "difficulty": {"easy_min_height": EASY_MIN_HEIGHT, "medium_min_height": MEDIUM_MIN_HEIGHT,
                       "hard": "all faces", "invalid": "excluded from every setting"},
        "counts": counts,
        "sources": "skimage.data.lfw_subset (faces 0-99, non-faces 100-199), skimage.data photographs, "
                   "sklearn.datasets.load_sample_images",
    }
    with open(dst / _MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    return manifest


def build(root=None, seed=0, n_train=240, n_val=120, image_size=DEFAULT_IMAGE_SIZE, face_size=DEFAULT_FACE_SIZE,
          quality=90, force=False, progress_bar=False):
    """Build the demo WIDER-format tree (once) and return its root folder.

    Args:
        root: target folder; default ``default_cache_dir() / '<version>-seed<seed>-<params hash>'``.
        seed: the random seed (the same parameters give the same bytes).
        n_train, n_val: number of images per split.
        image_size: (low, high) range of image height and width in pixels.
        face_size: (low, high) range of face box heights in pixels.
        quality: JPEG quality.
        force: rebuild even when ``root`` already holds this dataset, or holds
            a demo dataset built with other parameters.
        progress_bar: show a progress bar while rendering.

    Returns:
        ``Path`` of the tree (``WIDER_{train,val}/images``, ``wider_face_split``,
        ``manifest.json``). The evaluation gt_dir is ``root / 'wider_face_split'``.

    Raises:
        ValueError: bad parameters, or ``root`` exists and is not this demo
            dataset (a demo tree with other parameters needs ``force=True``;
            any other non-empty folder is never overwritten).
    """
    for name, v in (("n_train", n_train), ("n_val", n_val), ("seed", seed), ("quality", quality)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    if n_train < 0 or n_val < 0:
        raise ValueError(f"n_train and n_val must be >= 0, got {n_train}, {n_val}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    image_size = tuple(int(v) for v in image_size)
    face_size = tuple(int(v) for v in face_size)
    if len(image_size) != 2 or not 32 <= image_size[0] <= image_size[1] <= 4096:
        raise ValueError(f"image_size must be (low, high) with 32 <= low <= high <= 4096, got {image_size}")
    if len(face_size) != 2 or not 4 <= face_size[0] <= face_size[1]:
        raise ValueError(f"face_size must be (low, high) with 4 <= low <= high, got {face_size}")
    if face_size[0] > image_size[0] // 2:
        raise ValueError(f"face_size low {face_size[0]} must be at most half the smallest image side "
                         f"{image_size[0]}")
    params = _params(seed, n_train, n_val, image_size, face_size, quality)
    root = Path(root).expanduser() if root is not None else default_cache_dir() / _params_tag(params)

    if root.exists():
        if not root.is_dir():
            raise ValueError(f"root: {root} exists and is not a folder")
        manifest = _read_manifest(root)
        if manifest is not None and manifest.get("params") == params and not force:
            return root
        if manifest is None and any(root.iterdir()):
            raise ValueError(f"root: {root} is a non-empty folder that is not a tasklle demo dataset; "
                             "choose another folder")
        if manifest is not None and manifest.get("params") != params and not force:
            raise ValueError(f"root: {root} holds a demo dataset built with other parameters "
                             f"({manifest.get('params')}); pass force=True to rebuild it")

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the tree is ordinary data
    try:
        _write_tree(tmp, params, progress_bar)
        if root.exists():
            # Replace an empty folder or (force) an older demo tree: move it aside first.
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
            os.replace(root, old / "tree")
            try:
                os.replace(tmp, root)
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, root)
            except OSError:
                # Another process finished the same build first: use theirs if it matches.
                manifest = _read_manifest(root)
                if manifest is None or manifest.get("params") != params:
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def builtin(n_train=None, n_val=None, seed=0, verbose=True):
    """The built-in dataset's root: built on first use into the cache, then reused.

    A WIDER-format tree (``WIDER_{train,val}/images``, ``wider_face_split`` with
    the annotation .txt and evaluation .mat files) of real face crops composited
    onto real photographs (all shipped with scikit-image / scikit-learn).

    Args:
        n_train, n_val: images per split (None: 240 and 120, the demo's size);
            other sizes get their own cache folder.
        seed: the dataset's seed (the same arguments give the same bytes).
        verbose: say where it is when building took more than a second.

    Returns:
        ``Path`` of the root; its evaluation ground truth is ``root / 'wider_face_split'``.

    Example:
        >>> root = tasklle.data.builtin(n_train=8, n_val=6)
        >>> len(tasklle.data.WiderFace(root, "val"))
        6
    """
    kwargs = {"seed": seed}
    kwargs.update({k: v for k, v in (("n_train", n_train), ("n_val", n_val)) if v is not None})
    t0 = time.perf_counter()
    path = Path(build(**kwargs))  # cached by its parameters: built once
    if verbose and time.perf_counter() - t0 > 1:
        print(f"built-in dataset ready at {path} ({time.perf_counter() - t0:.0f} s)")
    return path


def builtin_split(split="val", n_train=None, n_val=None, seed=0, transform=None):
    """One split of the built-in dataset (:func:`builtin`) as a
    :class:`tasklle.data.WiderFace`: ``ds[i]`` is a dict with ``'image'`` (3, H, W)
    float in [0, 1], ``'boxes'`` (N, 4) x1 y1 x2 y2, ``'ignore'`` (N,) bool,
    ``'event'``, ``'name'``.

    Example:
        >>> val = tasklle.data.builtin_split("val", n_train=8, n_val=6)
        >>> val[0]["image"].shape[0]
        3
    """
    from .wider import WiderFace

    return WiderFace(builtin(n_train=n_train, n_val=n_val, seed=seed, verbose=False), split=split,
                     transform=transform)


# ----------------------------------------------------------------------------------------------
# Looking at it


def preview(root, n=6, path=None, split="val", seed=0, cols=3):
    """Draw ``n`` random images of ``split`` with their boxes into a PNG grid.

    Box colours: green easy (>= 40 px high), yellow medium (>= 20 px), red
    hard only, grey dashed invalid (ignored). Returns the PNG path (default:
    ``<root>-preview-<split>.png`` beside the tree, which stays untouched).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from .wider import WiderFace

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    ds = WiderFace(root, split)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(ds), size=min(n, len(ds)), replace=False)
    rows = int(np.ceil(len(picks) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, idx in zip(axes.ravel(), picks):
        item = ds[int(idx)]
        img = item["image"].permute(1, 2, 0).numpy()
        ax.imshow(img)
        for box, ign in zip(item["boxes"].numpy(), item["ignore"].numpy()):
            x1, y1, x2, y2 = box
            h = y2 - y1
            if ign:
                color, style = "0.6", "--"
            elif h >= EASY_MIN_HEIGHT:
                color, style = "lime", "-"
            elif h >= MEDIUM_MIN_HEIGHT:
                color, style = "yellow", "-"
            else:
                color, style = "red", "-"
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linestyle=style,
                                   linewidth=1.0))
        ax.set_title(f"{item['event']}/{item['name']} ({len(item['boxes'])} faces)", fontsize=7)
    fig.tight_layout()
    root = Path(root)
    path = Path(path) if path is not None else root.parent / f"{root.name}-preview-{split}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..io import atomic_write

    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path
