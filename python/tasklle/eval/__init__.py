"""Evaluation: the WIDER FACE protocol (easy / medium / hard AP); ``darkface``: the DARK FACE
challenge's (one AP); ``quality``: image-quality measures (PSNR, SSIM, CIEDE2000, exposure,
no-reference statistics); ``bootstrap``: the shared resampling over images.

``wider.evaluate(predictions, gt_dir)`` scores predictions; ``find_ground_truth(root)``
locates the .mat files; ``subset_ground_truth(gt, images, out)`` restricts them to the
images detected; ``ap_table({group: result})`` puts groups side by side (Markdown, and
``.rows`` for a DataFrame, ``intervals=`` to show each AP's interval);
``intervals.bootstrap(predictions, gt_dir)`` gives AP intervals over resampled val
images and ``intervals.paired_difference(a, b, gt_dir)`` paired differences."""
from .._lazy import lazy_module

_names = {
    "evaluate": ".wider",
    "plot_pr_curves": ".wider",
    "result_to_json": ".wider",
    # the file formats live in tasklle.data.wider_format
    "load_ground_truth": "..data.wider_format",
    "write_ground_truth": "..data.wider_format",
    "read_predictions": "..data.wider_format",
    "write_predictions": "..data.wider_format",
    "GroundTruth": "..data.wider_format",
    "ap_table": ".tables",
    "APTable": ".tables",
    "find_ground_truth": ".ground_truth",
    "subset_ground_truth": ".ground_truth",
}
# `tasklle.eval.wider` (and intervals, bootstrap, ...) is the submodule itself
_SUBMODULES = ("wider", "intervals", "bootstrap", "darkface", "quality")
__getattr__, __dir__ = lazy_module(__name__, _names, submodules=_SUBMODULES)
