"""Progress bars for long jobs: tqdm.auto (a widget in Jupyter, text in a
terminal), switched off with ``TASKLLE_PROGRESS=0`` or ``disable=True``."""
import os


def progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm

    if os.environ.get("TASKLLE_PROGRESS", "1") == "0":
        kwargs["disable"] = True
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
