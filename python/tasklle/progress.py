"""Progress bars for long jobs: tqdm.auto (a widget in Jupyter, text in a
terminal), switched off with ``TASKLLE_PROGRESS=0`` or ``disable=True``."""
import os


def progress(iterable=None, **kwargs):
    if os.environ.get("TASKLLE_PROGRESS", "1") == "0":
        kwargs["disable"] = True
    if kwargs.get("disable"):
        # a bar that never shows needs no widget (tqdm.auto warns in a kernel without ipywidgets)
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
