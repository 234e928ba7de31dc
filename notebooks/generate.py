"""Write the three tutorial notebooks with nbformat.

    python notebooks/generate.py                                   # cells only, outputs cleared
    PYTHONPATH=python python notebooks/generate.py --execute --budget small   # run them, keep outputs

Edit the cells here, not in the .ipynb files (a test checks that the committed
notebooks' cells are exactly these). Each notebook reads its run size from the
environment variable TASKLLE_NB_BUDGET ('tiny' in the test suite, 'small' by
default: under a minute on 2 CPU cores); ``--execute`` sets it from ``--budget``
and runs each notebook in a fresh kernel, in a scratch folder (``--work``).
The notebooks use only tasklle's public API (``help(tasklle)`` lists it).
"""
import argparse
import os
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os, time
from pathlib import Path
import numpy as np
import torch
import matplotlib.pyplot as plt
import tasklle

# Parameters: TASKLLE_NB_BUDGET=tiny (tests, seconds), small (default, under a minute), default, long.
BUDGET = os.environ.get("TASKLLE_NB_BUDGET", "small")
WORK = Path(os.environ.get("TASKLLE_NB_WORK", "notebook-runs"))
tasklle.set_num_threads(int(os.environ.get("TASKLLE_NB_THREADS", "2")))
os.environ.setdefault("TASKLLE_PROGRESS", "0")  # keep the saved notebook quiet
plt.rcParams["figure.dpi"] = 40  # small inline PNGs keep the saved notebook small
B = tasklle.experiments.budget(BUDGET)
print("budget", BUDGET, B)'''

DARK = '''\
dark = WORK / "dark"
tasklle.darken_dataset(root, dark, seed=0, workers=B["darken_workers"], verbose=False)  # resumes; skips done images'''


# measured with --execute --budget small on a 2-core machine shared with other jobs (load 4-5), where
# the times varied 2-20x from run to run; building the built-in dataset the first time adds ~10 s
NB01_TIME = "about 10 seconds at the small budget on 2 CPU cores"
NB02_TIME = "about 30 seconds at the small budget on 2 CPU cores (two 60-step trainings)"
NB03_TIME = "about 10 seconds at the small budget on 2 CPU cores (80 detections; minutes on a busy machine)"


def timing(text):
    """The line of the first cell that says how long the notebook takes."""
    return (f"\n\n*Run time with 2 CPU threads: {text}. Set `TASKLLE_NB_BUDGET=tiny` for a smoke run in "
            "seconds.*")


def nb01():
    cells = [
        new_markdown_cell(
            "# 1. Darkening a detection dataset\n\n"
            "The method needs low-light images *with* face boxes. It makes them by darkening a normal-light "
            "dataset with **EC-Zero-DCE**, a Zero-DCE-style curve network conditioned on a target exposure E "
            "(LEDNet's recipe); saturated pixels stay bright and, as in the method, no sensor noise is added "
            "(noise is an option for harder data). The boxes do not move, so the annotations are reused "
            "unchanged. This notebook darkens the built-in dataset (real face crops from scikit-image composited "
            "onto real photographs) with the darkener shipped in tasklle: one image at several exposures, "
            "with and without noise, then the whole dataset." + timing(NB01_TIME)),
        new_code_cell(SETUP),
        new_markdown_cell("## The built-in dataset\n\nBuilt once into a cache folder in the WIDER FACE layout "
                          "(`WIDER_{train,val}/images`, `wider_face_split/*.txt|*.mat`)."),
        new_code_cell('''\
root = tasklle.data.builtin(n_train=B["n_train"], n_val=B["n_val"])
ds = tasklle.data.WiderFace(root, "val")
print(root, "-", len(ds), "val images")
item = max((ds[i] for i in range(min(len(ds), 12))), key=lambda it: len(it["boxes"]))
fig, ax = plt.subplots(figsize=(5, 4))
ax.imshow(item["image"].permute(1, 2, 0))
for x1, y1, x2, y2 in item["boxes"].tolist():
    ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="lime", lw=1))
ax.set_title(f"{item['event']}/{item['name']}: {len(item['boxes'])} faces"); ax.axis("off"); plt.show()'''),
        new_markdown_cell("## One image, several exposures\n\n`tasklle.darken(image, exposure, seed)` asks for a "
                          "mean local exposure E (LEDNet draws E from U(0.05, 0.3)). We darken the same image to "
                          "four targets and measure the mean of 16x16 patch means of the result."),
        new_code_cell('''\
targets = [0.05, 0.1, 0.2, 0.3]
darks = [tasklle.darken(item["image"], e, seed=0) for e in targets]
fig, axes = plt.subplots(1, 5, figsize=(16, 3.2))
axes[0].imshow(item["image"].permute(1, 2, 0)); axes[0].set_title("original")
for ax, e, d in zip(axes[1:], targets, darks):
    patch = torch.nn.functional.avg_pool2d(d.mean(0, keepdim=True)[None], 16).mean().item()
    ax.imshow(d.permute(1, 2, 0).clamp(0, 1)); ax.set_title(f"E = {e}: measured {patch:.3f}")
for ax in axes: ax.axis("off")
plt.show()'''),
        new_markdown_cell("## Noise\n\nReal low-light photos are noisy. The method's data has no noise; "
                          "`noise='lednet'` adds LEDNet's training-time noise: Gaussian or Poisson, sometimes "
                          "grey. Zoomed crops, brightened x4 so the noise is visible:"),
        new_code_cell('''\
clean = tasklle.darken(item["image"], 0.1, seed=0, noise=None)
noisy = tasklle.darken(item["image"], 0.1, seed=0, noise="lednet")
h, w = clean.shape[-2:]
crop = (slice(None), slice(h // 4, h // 4 + 96), slice(w // 4, w // 4 + 96))
fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
for ax, img, t in zip(axes, (clean, noisy), ("no noise", "LEDNet noise")):
    ax.imshow((img[crop] * 4).clamp(0, 1).permute(1, 2, 0)); ax.set_title(t + " (x4)"); ax.axis("off")
plt.show()'''),
        new_markdown_cell("## The whole dataset\n\n`tasklle.darken_dataset(src, dst)` (CLI `tasklle darken`) "
                          "writes the dark copy with the same layout and annotation files. Each image gets its "
                          "own E (and noise, when asked for) from a per-image seed, so the result does not "
                          "depend on the number of "
                          "workers, and an interrupted run resumes where it stopped."),
        new_code_cell('''\
t0 = time.perf_counter()
dark = WORK / "dark"
report = tasklle.darken_dataset(root, dark, seed=0, workers=B["darken_workers"], verbose=False)
print(f"dark copy at {dark} ({time.perf_counter() - t0:.1f} s)")
dark_ds = tasklle.data.WiderFace(dark, "val")
pairs = [(ds[i], dark_ds[i]) for i in range(min(3, len(ds)))]
fig, axes = plt.subplots(2, len(pairs), figsize=(4 * len(pairs), 6), squeeze=False)
for j, (a, b) in enumerate(pairs):
    assert torch.equal(a["boxes"], b["boxes"])  # annotations untouched
    axes[0][j].imshow(a["image"].permute(1, 2, 0)); axes[0][j].set_title(f"original, mean {a['image'].mean():.2f}")
    axes[1][j].imshow(b["image"].permute(1, 2, 0)); axes[1][j].set_title(f"dark, mean {b['image'].mean():.2f}")
for ax in axes.flat: ax.axis("off")
plt.show()'''),
        new_code_cell('''\
means = np.array([[ds[i]["image"].mean().item(), dark_ds[i]["image"].mean().item()]
                  for i in range(min(len(ds), 40))])
plt.figure(figsize=(4, 3))
plt.hist(means[:, 0], bins=15, alpha=0.6, label="original"); plt.hist(means[:, 1], bins=15, alpha=0.6, label="dark")
plt.xlabel("mean brightness"); plt.legend(); plt.show()'''),
    ]
    return cells


def nb02():
    cells = [
        new_markdown_cell(
            "# 2. Joint training: Zero-DCE++ guided by a frozen face detector\n\n"
            "The enhancer (Zero-DCE++, 10k parameters) is trained on dark images with\n\n"
            "$$L_{total} = W_{up} L_{up} + W_{down} L_{down}$$\n\n"
            "where $L_{up}$ is Zero-DCE++'s non-reference loss (spatial consistency, exposure, colour, smoothness) "
            "and $L_{down}$ is the frozen TinaFace detector's own training loss on the *enhanced* images against "
            "the ground-truth boxes. The detector never changes; its gradient tells the enhancer what helps "
            "detection. $W_{down}=0$ is plain Zero-DCE++ training. This notebook looks at a training batch, trains "
            "both ways on the same data and compares what the two enhancers make of a dark image."
            + timing(NB02_TIME)),
        new_code_cell(SETUP),
        new_markdown_cell("## Data and the frozen detector\n\nThe dark copy of the built-in train split (made if "
                          "missing) and the lite TinaFace shipped with tasklle, trained on the built-in data."),
        new_code_cell('''\
root = tasklle.data.builtin(n_train=B["n_train"], n_val=B["n_val"])
''' + DARK + '''
detector = tasklle.models.TinaFace.shipped()  # frozen: eval mode, no parameter needs a gradient
from tasklle.train import JointBatches, joint, state_dict_sha256
print("detector parameters:", sum(p.numel() for p in detector.parameters()),
      "sha256", state_dict_sha256(detector)[:16])'''),
        new_markdown_cell("## A training batch\n\n`JointBatches` makes the batches `joint` trains on: the "
                          "detector's random square crop and flip (no colour jitter), resized to `image_size`; the "
                          "batch of a step depends only on the seed, so this is exactly step 0 of the runs below."),
        new_code_cell('''\
size = B["image_size"]
images, targets = JointBatches.from_data(dark, image_size=size, batch_size=4, seed=0).batch(0)
print("images", tuple(images.shape), "- faces per image", [len(t["boxes"]) for t in targets])
fig, axes = plt.subplots(1, len(images), figsize=(3 * len(images), 3))
for ax, img, t in zip(axes, images, targets):
    ax.imshow((img * 3).clamp(0, 1).permute(1, 2, 0)); ax.axis("off")  # brightened x3 to be seen
    for (x1, y1, x2, y2), ign in zip(t["boxes"].tolist(), t["ignore"].tolist()):
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="grey" if ign else "lime", lw=1))
plt.show()'''),
        new_markdown_cell("Darkness hurts the detector: its loss on the same boxes is higher on the dark images "
                          "than on the originals."),
        new_code_cell('''\
with torch.no_grad():
    for name, r in (("original", root), ("dark", dark)):
        images, targets = JointBatches.from_data(r, image_size=size, batch_size=4, seed=0).batch(0)
        total, parts = detector.loss(images, targets)
        print(f"{name:9s} L_down {total.item():.3f}  " + "  ".join(f"{k} {v.item():.3f}" for k, v in parts.items()))'''),
        new_markdown_cell("## Train twice, same data, same seed\n\nOnce with $L_{up}$ only (ratio 1:0) and once "
                          "jointly with the method's 2:1 ($W_{up}=1$, $W_{down}=0.5$). `joint` logs every step, "
                          "checkpoints atomically and can resume; it checks that the detector's weights are "
                          "bit-identical at the end."),
        new_code_cell('''\
steps = B["steps"]
kw = dict(steps=steps, batch_size=B["batch_size"], image_size=size, seed=0, checkpoint_every=max(1, steps // 2),
          show_progress=False, resume=True)
up_only = joint(dark, None, WORK / "up_only", w_up=1.0, w_down=0.0, **kw)
joint_run = joint(dark, detector, WORK / "joint", w_up=1.0, w_down=0.5, **kw)
print("detector unchanged:", joint_run["detector_sha256"] == state_dict_sha256(detector))'''),
        new_code_cell('''\
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
for run, label in ((up_only, "L_up only"), (joint_run, "joint 2:1")):
    s = [r["step"] for r in run["rows"]]
    axes[0].plot(s, [r["l_up"] for r in run["rows"]], label=label)
axes[1].plot([r["step"] for r in joint_run["rows"]], [r["l_down"] for r in joint_run["rows"]], color="C1")
axes[0].set_title("L_up"); axes[1].set_title("L_down (joint run)")
for ax in axes: ax.set_xlabel("step"); ax.grid(alpha=0.3)
axes[0].legend(); plt.show()'''),
        new_markdown_cell("## What the two enhancers do to a dark val image"),
        new_code_cell('''\
val = tasklle.data.WiderFace(dark, "val")
orig = tasklle.data.WiderFace(root, "val")
i = max(range(min(len(val), 10)), key=lambda k: len(val.target(k)["boxes"]))
low = val[i]["image"]
cols = {"low-light": low, "Zero-DCE++ (L_up)": tasklle.enhance(low, model=up_only["model"]),
        "joint 2:1": tasklle.enhance(low, model=joint_run["model"]), "original": orig[i]["image"]}
fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
for ax, (t, img) in zip(axes, cols.items()):
    dets = detector.detect(img, score_thr=0.05)[0]
    ax.imshow(img.permute(1, 2, 0).clamp(0, 1)); ax.axis("off")
    for x1, y1, x2, y2, s in dets[dets[:, 4] >= 0.5]:
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="lime", lw=1))
    ax.set_title(f"{t}: {int((dets[:, 4] >= 0.5).sum())} faces >= 0.5")
plt.show()'''),
        new_markdown_cell("The full comparison on the whole val split, with AP, is `tasklle experiment "
                          "four-groups` (or `tasklle demo`); notebook 3 shows the evaluation step by step."),
    ]
    return cells


def nb03():
    cells = [
        new_markdown_cell(
            "# 3. WIDER FACE evaluation\n\n"
            "Detections are scored with the official WIDER FACE protocol: scores normalised over the whole set, "
            "matching at IoU 0.5 (with the +1 pixel convention), faces outside a setting ignored, 1000 score "
            "thresholds, VOC-style AP. The settings **easy / medium / hard** count different faces (on the "
            "built-in data: by face height; hard counts all). The same code reads the real WIDER FACE ground "
            "truth (`wider_face_split/*.mat`). This notebook detects the val split in normal light and in the dark "
            "copy with the shipped detector, scores both and plots their precision-recall curves."
            + timing(NB03_TIME)),
        new_code_cell(SETUP),
        new_code_cell('''\
root = tasklle.data.builtin(n_train=B["n_train"], n_val=B["n_val"])
''' + DARK + '''
detector = tasklle.models.load_shipped("tinaface-lite-demo")
images = tasklle.data.list_split(root, "val", B["max_val"])  # [(index, event, name)], a fixed subset
# the ground truth of only those images, so the others do not count as missed faces
gt = tasklle.eval.subset_ground_truth(tasklle.eval.find_ground_truth(root), images, WORK / "gt")
print(len(images), "val images; ground truth in", gt)'''),
        new_markdown_cell("## Detect\n\n`detector.detect(image)` runs the TinaFace test pipeline (keep-ratio resize, "
                          "score = cls^0.8 x iou^1.2, NMS 0.45) and returns `[x1, y1, x2, y2, score]` rows; "
                          "the evaluator wants `x, y, w, h, score` per `(event, name)`: `tasklle.detect_split` "
                          "gives that for a whole split (`enhancer=` runs an enhancer on each image first)."),
        new_code_cell('''\
t0 = time.perf_counter()
preds = {name: tasklle.detect_split(detector, r, "val", images=images, scale=B["detect_scale"],
                                    score_thr=B["score_thr"], show_progress=False)
         for name, r in (("original", root), ("low-light", dark))}
print(f"detected {2 * len(images)} images in {time.perf_counter() - t0:.1f} s")'''),
        new_markdown_cell("What the detector sees: one val image, its ground truth (dashed) and the detections "
                          "with score >= 0.5, in normal light and in the dark copy."),
        new_code_cell('''\
_, event, name = images[0]
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, (label, r) in zip(axes, (("original", root), ("low-light", dark))):
    img = tasklle.io.read_image(Path(r) / "WIDER_val" / "images" / event / f"{name}.jpg")
    ax.imshow(img.permute(1, 2, 0)); ax.axis("off")
    for x, y, w, h, s in preds[label][(event, name)]:
        if s >= 0.5:
            ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, ec="lime", lw=1))
            ax.text(x, y - 1, f"{s:.2f}", color="lime", fontsize=6)
    ax.set_title(f"{label}: {int((preds[label][(event, name)][:, 4] >= 0.5).sum())} detections >= 0.5")
plt.show()'''),
        new_markdown_cell("## Evaluate\n\n`tasklle.eval.wider.evaluate(predictions, gt_dir)` gives AP per setting "
                          "and the precision-recall curves; prediction folders in the official format can be "
                          "written and read back (`write_predictions` / `read_predictions`, CLI `tasklle evaluate`). "
                          "`tasklle.eval.ap_table` puts groups side by side; its `.rows` is one dict per group "
                          "(`pandas.DataFrame(table.rows)`)."),
        new_code_cell('''\
from tasklle.eval import wider
results = {name: wider.evaluate(p, gt) for name, p in preds.items()}
table = tasklle.eval.ap_table(results)
print(table.rows[-1])  # one dict per group: pandas.DataFrame(table.rows)
table  # shown as a Markdown table'''),
        new_code_cell('''\
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
wider.plot_pr_curves(results, list(axes))  # one panel per setting (a file path saves a PNG instead)
plt.show()'''),
        new_markdown_cell("## The official folder format round-trips"),
        new_code_cell('''\
wider.write_predictions(WORK / "pred_low", preds["low-light"])
again = wider.evaluate(wider.read_predictions(WORK / "pred_low"), gt)
print({k: round(again[k], 4) for k in ("easy", "medium", "hard")})
assert abs(again["hard"] - results["low-light"]["hard"]) < 1e-3'''),
    ]
    return cells


NOTEBOOKS = {"01_darkening.ipynb": nb01, "02_joint_training.ipynb": nb02, "03_wider_evaluation.ipynb": nb03}


def build(name):
    """The notebook ``name`` as generate.py writes it, outputs cleared (a NotebookNode)."""
    nb = new_notebook(cells=NOTEBOOKS[name](), metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    nbformat.validate(nb)
    return nb


def execute(nb, budget, work, threads, timeout=1800):
    """Run ``nb`` top to bottom in a fresh kernel (cwd ``work``) at ``budget``; outputs stay in ``nb``."""
    import nbclient

    env = {"TASKLLE_NB_BUDGET": budget, "TASKLLE_NB_WORK": str(Path(work) / "work"),
           "TASKLLE_NB_THREADS": str(threads), "TASKLLE_PROGRESS": "0",
           # the kernel runs in `work`: a relative PYTHONPATH (PYTHONPATH=python) must still find tasklle
           "PYTHONPATH": os.pathsep.join(str(Path(p).resolve()) for p in
                                         os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        # no per-cell timestamps: the saved notebook changes only when its outputs do
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(work)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--execute", action="store_true", help="run each notebook and store its outputs")
    ap.add_argument("--budget", default="small", choices=("tiny", "small", "default", "long"),
                    help="run size for --execute (default: small, what the committed notebooks show)")
    ap.add_argument("--work", default=None, help="scratch folder for --execute (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=2, help="threads for --execute (default 2)")
    ap.add_argument("names", nargs="*", help="notebooks to write (default: all three)")
    args = ap.parse_args(argv)
    for name in args.names:
        if name not in NOTEBOOKS:
            ap.error(f"unknown notebook {name!r}; known: {', '.join(NOTEBOOKS)}")
    with tempfile.TemporaryDirectory(prefix="tasklle-nb-") as tmp:
        work = Path(args.work or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        for name in args.names or NOTEBOOKS:
            nb = build(name)
            if args.execute:
                import time

                t0 = time.perf_counter()
                execute(nb, args.budget, work, args.threads)
                print(f"executed {name} at budget {args.budget} in {time.perf_counter() - t0:.0f} s")
            path = HERE / name
            nbformat.write(nb, str(path))
            print("wrote", path, f"({path.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
