"""RetinaFace face detector (biubug6/Pytorch_Retinaface): ``RetinaFace('mobilenet0.25')``,
``RetinaFace('resnet50')``, ``RetinaFace.from_biubug6(path)``, ``RetinaFace.shipped()``,
``RetinaFace.load(path)``."""
from .detector import CONFIGS, RetinaFace, count_parameters
from .priors import decode_boxes, decode_landmarks, prior_boxes

__all__ = ["RetinaFace", "CONFIGS", "count_parameters", "prior_boxes", "decode_boxes", "decode_landmarks"]
