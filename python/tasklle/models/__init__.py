"""Models: DCE-Net (Zero-DCE), Zero-DCE++, the exposure-conditioned darkeners (ours and LEDNet's) and TinaFace."""
from .._lazy import lazy_module

__getattr__, __dir__ = lazy_module(__name__, {
    "DCENet": ".zero_dce",
    "ZeroDCEPP": ".zero_dce_pp",
    "ECZeroDCE": ".ec_zero_dce",
    "ConditionZeroDCE": ".lednet_darkener",
    "TinaFace": ".tinaface",
})
