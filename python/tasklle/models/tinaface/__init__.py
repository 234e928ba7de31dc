"""TinaFace face detector (vedadet tinaface_r50_fpn_gn_dcn) and a
lite configuration with the same parts: ``TinaFace()``, ``TinaFace.lite()``,
``TinaFace.load(path)``, ``TinaFace.from_vedadet(path)``."""
from .detector import FULL_CONFIG, LITE_CONFIG, TinaFace, count_parameters
from .postprocess import detections_to_wider

__all__ = ["TinaFace", "FULL_CONFIG", "LITE_CONFIG", "count_parameters", "detections_to_wider"]
