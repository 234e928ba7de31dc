"""Enhance low-light images with Zero-DCE++ (or Zero-DCE).

``tasklle.enhance(images, model=None, weights=None, ...)`` takes a tensor
(3,H,W) / (B,3,H,W) in [0,1], a NumPy array (H,W,3) / (B,H,W,3) (uint8 or
float), a PIL image or a path, and gives the result back in the same kind
(a path gives a (3,H,W) tensor); a list gives a list. ``enhance_folder(src,
dst, ...)`` enhances a file or a folder tree into another, keeping the layout.

The model is, in order: ``model`` (a ZeroDCEPP / DCENet module), ``weights``
(a tasklle checkpoint such as ``train_upstream``'s ``final.pt``, or an
official Zero-DCE++ / Zero-DCE state_dict), or the shipped
``tasklle/weights/zero_dce_pp.pt`` when the package ships one. The official
weights are not ours to redistribute, so a checkout may ship none: then pass
``model=`` or ``weights=``.
"""
import itertools
from pathlib import Path

import torch

from ._alloc import with_fast_alloc
from .io import ImageReadError, from_tensor, list_images, read_image, to_tensor, write_image

SHIPPED = Path(__file__).resolve().parent / "weights" / "zero_dce_pp.pt"


def load_model(model=None, weights=None, official=False, scale_factor=None):
    """Resolve the enhancer (see the module docstring); returns it in eval mode.

    ``official=True`` reads ``weights`` as an official state_dict strictly
    (``ZeroDCEPP.from_official``) and defaults the scale factor to 12, the
    value of the official test script (``scale_factor`` overrides)."""
    from .models import DCENet, ZeroDCEPP

    if model is not None:
        if weights is not None:
            raise ValueError("give either model or weights, not both")
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be an nn.Module (ZeroDCEPP or DCENet), got {type(model).__name__}")
        if scale_factor is not None and hasattr(model, "scale_factor"):
            model.scale_factor = scale_factor
        return model.eval()
    if weights is None:
        if not SHIPPED.is_file():
            raise ValueError("no enhancement model: this installation ships no Zero-DCE++ weights "
                             f"({SHIPPED} is absent). Pass model=<ZeroDCEPP module> or weights=<checkpoint path> "
                             "(a train_upstream final.pt or the official Epoch99.pth; CLI: --weights PATH)")
        weights = SHIPPED
    weights = Path(weights)
    if official:
        return ZeroDCEPP.from_official(weights, scale_factor=12 if scale_factor is None else scale_factor)
    try:
        return ZeroDCEPP.load(weights, scale_factor=scale_factor)
    except ValueError as first:
        if "does not match" not in str(first):
            raise
        try:  # a Zero-DCE (DCE-Net) checkpoint?
            return DCENet.load(weights)
        except ValueError:
            raise first from None


def _run(net, x, batch_size):
    """(B,3,H,W) -> enhanced (B,3,H,W) in [0,1], in chunks of batch_size."""
    p = next(net.parameters(), None)
    device = p.device if p is not None else x.device
    dtype = p.dtype if p is not None else torch.float32
    outs = []
    with torch.no_grad():
        for k in range(0, x.shape[0], batch_size):
            xb = x[k:k + batch_size].to(device=device, dtype=dtype)
            out = net(xb)
            y = out[1] if len(out) == 3 else out[0]  # DCENet: (half, enhanced, maps)
            outs.append(y.clamp_(0.0, 1.0).to(device=x.device, dtype=x.dtype))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def enhance(images, model=None, weights=None, batch_size=4, official=False, scale_factor=None):
    """Enhance one image, a batch, or a list of them.

    Args:
        images: tensor (3,H,W)/(B,3,H,W) in [0,1], NumPy (H,W,3)/(B,H,W,3) uint8 or float,
            PIL image, path, or a list of these (sizes may differ).
        model: a ZeroDCEPP / DCENet module (default: ``weights`` or the shipped weights).
        weights: checkpoint path (ours or official) when no model is given.
        batch_size: images per forward pass.
        official: read ``weights`` strictly as official Zero-DCE++ weights, scale factor 12
            by default (as the official test script).
        scale_factor: override the Zero-DCE++ scale factor (any image size works; see ZeroDCEPP).

    Returns:
        The enhanced image(s) in the kind given (tensor / array / PIL; a path gives a
        (3,H,W) tensor; a list gives a list). Values in [0, 1].

    Example:
        >>> from tasklle.models import ZeroDCEPP
        >>> out = enhance(torch.rand(3, 40, 50) * 0.2, model=ZeroDCEPP().init_weights())
        >>> out.shape
        torch.Size([3, 40, 50])
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    net = load_model(model, weights, official, scale_factor)
    if isinstance(images, (list, tuple)):
        return [enhance(im, net, batch_size=batch_size) for im in images]
    x, kind = to_tensor(images)
    return from_tensor(_run(net, x, batch_size), kind)


def _read_planar(path):
    """read_image, laid out (3, H, W)-contiguous on the I/O thread (a NumPy copy,
    no OpenMP team), so that stacking the batch on the main thread is a plain copy."""
    import numpy as np

    return torch.from_numpy(np.ascontiguousarray(read_image(path).numpy()))


@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def enhance_folder(src, dst, model=None, weights=None, batch_size=4, official=False, scale_factor=None,
                   overwrite=False, show_progress=True, io_workers=None):
    """Enhance an image file or every image below ``src`` into ``dst``, keeping
    the relative layout, names and formats. Outputs are written atomically
    (``tasklle.io.write_image``): an interrupted run leaves no half-written
    file, and rerunning skips outputs that already exist unless ``overwrite``.
    Unreadable or corrupt inputs are reported and skipped.

    A file ``src`` goes to ``dst`` itself when ``dst`` has an image suffix,
    else into the folder ``dst``.

    Decoding the next images and encoding/writing the previous ones run on
    ``io_workers`` threads (default 2) while the model runs on the current
    batch: Pillow's codecs, NumPy, torch and the file system calls release the
    GIL, and each file's fsync waits on the disk, not on a core. The pixels
    are exactly those of decoding, enhancing and encoding one image after the
    other (same functions, same order of operations on each image).

    Returns:
        dict: 'written' (count), 'existing' (skipped because present), 'failed'
        (list of (path, reason)), 'outputs' (list of written paths, in input order).
    """
    import collections
    import concurrent.futures as cf

    from .progress import progress

    src, dst = Path(src), Path(dst)
    files = list_images(src)  # FileNotFoundError for a missing src
    if src.is_file():
        target = dst if dst.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp") \
            else dst / src.name
        pairs = [(src, target)]
    else:
        if not files:
            raise ValueError(f"src: no image files found in {src}")
        if dst.resolve() == src.resolve():
            raise ValueError("dst must differ from src (inputs are never overwritten)")
        pairs = [(f, dst / f.relative_to(src)) for f in files]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if io_workers is None:
        io_workers = 2
    if isinstance(io_workers, bool) or not isinstance(io_workers, int) or io_workers < 1:
        raise ValueError(f"io_workers must be an int >= 1, got {io_workers!r}")
    net = load_model(model, weights, official, scale_factor)
    todo = [(s, d) for s, d in pairs if overwrite or not d.exists()]
    summary = {"written": 0, "existing": len(pairs) - len(todo), "failed": [], "outputs": []}
    bar = progress(total=len(todo), desc="enhance", unit="img", disable=not show_progress)
    pool = cf.ThreadPoolExecutor(max_workers=io_workers, thread_name_prefix="tasklle-enhance-io")
    reads = collections.deque()  # (src, dst, future of read_image), decoded ahead of the model
    writes = collections.deque()  # (src, dst, future of write_image), finished in input order
    queue = iter(todo)

    def read_ahead(n):
        for s, d in itertools.islice(queue, n):
            reads.append((s, d, pool.submit(_read_planar, s)))

    def finish_write():
        s, d, fut = writes.popleft()
        try:
            fut.result()
        except (OSError, ValueError) as e:
            summary["failed"].append((str(s), f"cannot write {d}: {e}"))
            bar.write(f"cannot write {d}: {e}")
        else:
            summary["written"] += 1
            summary["outputs"].append(str(d))
        bar.update(1)

    try:
        read_ahead(2 * batch_size)
        while reads:
            chunk = [reads.popleft() for _ in range(min(batch_size, len(reads)))]
            read_ahead(len(chunk))  # keep the next batches decoding while this one runs
            loaded = []
            for s, d, fut in chunk:
                try:
                    loaded.append((fut.result(), s, d))
                except (ImageReadError, FileNotFoundError, OSError) as e:
                    summary["failed"].append((str(s), str(e)))
                    bar.write(f"skipping {s}: {e}")
                    bar.update(1)
            # one forward per group of equal sizes
            groups = {}
            for item in loaded:
                groups.setdefault(tuple(item[0].shape), []).append(item)
            for items in groups.values():
                ys = _run(net, torch.stack([im for im, _, _ in items]), batch_size)
                for y, (_, s, d) in zip(ys, items):
                    writes.append((s, d, pool.submit(write_image, d, y)))
            while writes and (writes[0][2].done() or len(writes) > 2 * batch_size):
                finish_write()  # bounded: at most two batches of outputs held in memory
        while writes:
            finish_write()
    finally:
        # on an error or interrupt: drop what has not started (outputs are atomic, so
        # nothing half-written is left), wait for what has
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return summary
