"""Attribute recognition on museum images (the iMet Collection task): multi-label tags per image.

Data: :class:`~artid.attributes.imet.IMetDataset` reads the iMet Collection 2019 / 2020 Kaggle
layout and the ``imet/`` folder that ``artid synth`` writes; :func:`write_submission` writes
a Kaggle ``submission.csv``.
"""

from artid.attributes.imet import GROUPS_2019, GROUPS_2020, IMetDataset, IMetSplit
from artid.attributes.imet_csv import Label, read_annotations, read_labels, write_submission

__all__ = [
    "GROUPS_2019",
    "GROUPS_2020",
    "IMetDataset",
    "IMetSplit",
    "Label",
    "read_annotations",
    "read_labels",
    "write_submission",
]
