"""Training loops: Zero-DCE/Zero-DCE++ (upstream), the darkener, the detector and joint training.

Each trainer is its model and its step; what they share (the run folder and
its checkpoint, one resume policy raising ``CheckpointExists`` /
``ResumeMismatch``, the run length ``steps`` or ``epochs``, the loop that saves
on Ctrl-C / SIGTERM, the loss log ``log.csv`` + ``log.json``, the result
``TrainResult``, argument checks, data-parallel helpers) is :mod:`tasklle.train.run`.

``joint(data, detector, out, w_up=1, w_down=0.5, ...)`` trains Zero-DCE++ with a frozen
detector's loss; ``JointBatches`` gives the batches it trains on; ``joint_losses`` is one
step's forward; ``state_dict_sha256`` the fingerprint that shows the detector unchanged."""
from .._lazy import lazy_module

# bound eagerly: the submodule of the same name must not shadow the function
from .joint import joint  # noqa: E402,F401

__getattr__, __dir__ = lazy_module(__name__, {
    "train_upstream": ".upstream",
    "train_darkener": ".darkener",
    "train_detector": ".detector",
    "JointBatches": "..data.sampling",
    "make_transform": ".joint",
    "joint_losses": ".joint_step",
    "state_dict_sha256": ".joint",
    "load_upstream": ".joint",
    "read_log": ".joint_log",
    "ResumeMismatch": ".run",
    "CheckpointExists": ".run",
    "TrainResult": ".run",
})
