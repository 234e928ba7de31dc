"""MATLAB v5 cell arrays as scipy.io reads and writes them: the plumbing under
the WIDER ground-truth files (``ground_truth``). Readers name the file and the
cell of anything that is not what the official structure holds."""
import io

import numpy as np


def cells(arr, what, path):
    """Elements of a MATLAB cell array as loadmat returns it (an object ndarray), in MATLAB order."""
    if isinstance(arr, np.ndarray) and arr.dtype == object:
        return list(arr.ravel(order="F"))
    if isinstance(arr, np.ndarray) and arr.size == 0:
        return []  # savemat writes an empty cell as an empty matrix
    raise ValueError(f"{path}: {what} is not a cell array (got {type(arr).__name__} "
                     f"{getattr(arr, 'dtype', '')} {getattr(arr, 'shape', '')})")


def unwrap(x):
    # loadmat wraps cell contents: array([[array(['name'])]], dtype=object) and the like
    while isinstance(x, np.ndarray) and x.dtype == object and x.size == 1:
        x = x.ravel()[0]
    return x


def mat_strings(arr, what, path):
    """A cell of strings (or a char matrix) -> list of str."""
    if isinstance(arr, np.ndarray) and arr.dtype.kind == "U":
        return [str(s).rstrip() for s in arr.ravel(order="F")]
    out = []
    for k, x in enumerate(cells(arr, what, path)):
        x = unwrap(x)
        if isinstance(x, np.ndarray) and x.dtype.kind == "U" and x.size == 1:
            x = str(x.ravel()[0])
        if not isinstance(x, str) or not x:
            raise ValueError(f"{path}: {what}{{{k + 1}}} is not a non-empty string")
        out.append(x)
    return out


def _numeric(x, where, what):
    """The cell's content as a numeric array; ValueError '{where}: {what}, got dtype ...' otherwise."""
    a = np.asarray(unwrap(x))
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise ValueError(f"{where}: {what}, got dtype {a.dtype}")
    return a


def as_boxes(x, where):
    a = _numeric(x, where, "face boxes must be a numeric (K, 4) array")
    if a.size == 0:
        return np.zeros((0, 4))
    if a.ndim == 1 and a.size == 4:
        a = a.reshape(1, 4)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"{where}: face boxes must be (K, 4) x y w h, got shape {a.shape}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: face boxes must be finite")
    return a


def as_indices(x, where):
    a = _numeric(x, where, "gt_list entries must be numeric 1-based indices").ravel(order="F")
    if a.dtype.kind == "f":
        if not (np.isfinite(a).all() and (a == np.round(a)).all()):
            raise ValueError(f"{where}: gt_list entries must be integers")
    return a.astype(np.int64)


def loadmat(path, names):
    import scipy.io

    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file not found: {path}")
    try:
        m = scipy.io.loadmat(str(path), variable_names=names)
    except Exception as e:  # scipy raises several types for corrupt files
        raise ValueError(f"cannot read {path}: {e}") from e
    return m


def cell(items):
    """A MATLAB cell column (len, 1) from a list of arrays/strings."""
    c = np.empty((len(items), 1), dtype=object)
    for k, it in enumerate(items):
        c[k, 0] = it
    return c


def box_array(b, where):
    """(K, 4) x y w h as the official files store it: int32 when every value is
    an integer in range (as they are), float64 otherwise, so values round-trip."""
    b = np.asarray(b)
    if b.dtype == object or b.dtype.kind not in "biuf":
        raise TypeError(f"{where}: boxes must be a numeric (K, 4) array, got dtype {b.dtype}")
    b = b.reshape(-1, 4) if b.size else np.zeros((0, 4), dtype=b.dtype)
    f = b.astype(np.float64)
    if not np.isfinite(f).all():
        raise ValueError(f"{where}: boxes must be finite")
    if (f == np.round(f)).all() and (np.abs(f) < 2**31).all():
        return f.astype(np.int32)
    return f


def index_array(indices, where):
    """gt_list entry like the official files: (k, 1) uint8 (wider types beyond 255); (0, 0) when empty."""
    k = np.asarray(indices).reshape(-1)
    if k.size == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    if k.dtype.kind not in "iuf" or not (np.isfinite(k).all() and (k == np.round(k)).all() and (k >= 1).all()):
        raise ValueError(f"{where}: gt_list indices must be integers >= 1")
    top = int(k.max())
    dtype = np.uint8 if top <= 0xFF else np.uint16 if top <= 0xFFFF else np.uint32
    return k.astype(dtype).reshape(-1, 1)


def save_mat(path, variables, creator):
    """scipy.io.savemat, compressed, with a fixed header text (scipy writes the
    current time there), so the same content gives the same bytes; atomic."""
    import scipy.io

    from ...io import atomic_write

    buf = io.BytesIO()
    scipy.io.savemat(buf, variables, format="5", do_compression=True, oned_as="column")
    data = bytearray(buf.getvalue())
    data[:116] = f"MATLAB 5.0 MAT-file, Platform: posix, Created by: {creator}".encode().ljust(116, b" ")
    with atomic_write(path) as f:
        f.write(bytes(data))
