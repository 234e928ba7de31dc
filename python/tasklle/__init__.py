"""tasklle: task-oriented low-light enhancement.

Darken a detection dataset (EC-Zero-DCE), enhance it with Zero-DCE / Zero-DCE++,
train the enhancer jointly with a frozen face detector's loss (TinaFace), and
evaluate every image group on WIDER FACE. Hot paths run in a C core
(tasklle._C); every C kernel has a pure-PyTorch twin in tasklle.reference.

The notebook API (each name's help() has shapes, defaults and an example):

  data.builtin(n_train, n_val)          the built-in WIDER-format dataset's root (built once)
  data.builtin_split(split)             one of its splits as a dataset of {'image', 'boxes', 'ignore'}
  data.WiderFace(root, split)           any WIDER-format split as a dataset
  data.list_split(root, split, max_images)  [(index, event, name)] of a split (fixed subset)
  darken(image, exposure, seed)         one image to a target exposure (shipped EC-Zero-DCE)
  darken_dataset(src, dst, seed=0)      the dark copy of a WIDER-format tree (resumable)
  models.load_shipped(name)             'tinaface-lite-demo', 'retinaface-mobilenet0.25' or 'ec-zero-dce'
  models.load_detector(detector)        a detector from a shipped name, a path or a module (default: lite TinaFace)
  models.TinaFace.shipped()             the shipped lite detector, frozen
  models.RetinaFace.shipped()           the shipped RetinaFace mobilenet0.25, frozen
  models.ECZeroDCE.shipped()            the shipped darkener
  models.ZeroDCEPP.from_official(path)  official Zero-DCE++ weights (Zero-DCE++ repository)
  enhance(images, model=m)              enhance (3,H,W) / (B,3,H,W) / arrays / paths, any size/device
  train.JointBatches.from_data(root)    the batches joint training sees: batch(step) -> images, targets
  train.joint(dark, detector, out)      train Zero-DCE++ with W_up L_up + W_down L_down
  detect_split(detector, root, split)   {(event, name): (K, 5) x y w h score}, optionally enhanced
  eval.find_ground_truth(root)          the folder of the evaluation .mat files
  eval.subset_ground_truth(gt, images, out)  ground truth of only the images detected
  eval.wider.evaluate(preds, gt)        AP easy / medium / hard and PR curves (official protocol)
  eval.wider.plot_pr_curves(results, path_or_ax)  PR curves of several groups
  eval.intervals.bootstrap(preds, gt)   AP intervals over resampled val images; .paired_difference
  eval.ap_table({group: result})        Markdown table of groups; .rows for a DataFrame
  experiments.budget(name)              run sizes 'tiny', 'small', 'default', 'long'
  set_num_threads(n), show_config()     threads of the C core and torch; build info
  set_fast_alloc(on), trim_memory()     allocator settings (on by default), free heap back to the OS
"""
from ._alloc import apply_at_import as _apply_alloc_settings
from ._alloc import set_fast_alloc
from ._alloc import trim as trim_memory
from ._lazy import lazy_module as _lazy_module
from ._threads import get_num_threads, set_num_threads, show_config

__version__ = "0.1.0"

# Large tensor buffers stay in the heap for the whole process, so a user's own
# training loop does not fault every activation in again at every step
# (tasklle._alloc; off: TASKLLE_FAST_ALLOC=0 or set_fast_alloc(False)).
_apply_alloc_settings()

# Loaded on first use so that `import tasklle` stays fast in a notebook.
_SUBPACKAGES = ("ops", "reference", "losses", "models", "data", "eval", "train", "experiments", "io", "noise")
_FUNCTIONS = {"enhance": ".enhancement", "darken": ".darkening", "darken_dataset": ".dataset_darkening",
              "detect_split": ".detection"}
__getattr__, __dir__ = _lazy_module(__name__, _FUNCTIONS, submodules=_SUBPACKAGES, cache=True)


__all__ = ["get_num_threads", "set_num_threads", "set_fast_alloc", "trim_memory", "show_config", *_SUBPACKAGES, *_FUNCTIONS]
