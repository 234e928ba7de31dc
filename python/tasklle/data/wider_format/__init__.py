"""The WIDER FACE file formats, read and written in one place for everyone
(the Dataset, the demo data, the evaluation, the experiments):

- ``annotations``: the ``wider_face_{train,val}_bbx_gt.txt`` annotation files
  (``read_wider_annotations``, ``write_wider_annotations``,
  ``format_annotation_record``);
- ``ground_truth``: the evaluation ground truth ``wider_face_val.mat`` and
  ``wider_{easy,medium,hard}_val.mat`` (``GroundTruth``,
  ``load_ground_truth``, ``write_ground_truth``);
- ``predictions``: prediction folders ``<event>/<name>.txt``
  (``read_predictions``, ``read_prediction_file``, ``write_predictions``).

Every reader treats files as untrusted: strict rows, errors that name the
file and line (or variable and image), bounded reads of regular files only,
no path that leaves its folder.
"""
from .annotations import (ATTRIBUTE_MAX, ATTRIBUTE_NAMES, INVALID_COLUMN, format_annotation_record,  # noqa: F401
                          format_report, read_wider_annotations, write_wider_annotations)
from .ground_truth import (GT_FILE, SETTINGS, GroundTruth, check_settings, load_ground_truth,  # noqa: F401
                           setting_file, write_ground_truth)
from .predictions import (MAX_PREDICTION_FILE_BYTES, prediction_array, read_prediction_file,  # noqa: F401
                          read_predictions, write_predictions)
