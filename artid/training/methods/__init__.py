"""The training methods of the thesis (section 4.4), each a small object the one loop drives.

Every method is one module that defines its settings, the method and a factory, and registers
them by name (:mod:`artid.training.registry`); importing this package registers them all:

- :mod:`.contrastive`: Siamese contrastive loss on mined pairs and a positive strategy.
- :mod:`.simsiam`: two augmentations, projector and predictor MLPs, stop-gradient.
- :mod:`.dnet`: cosine classifier with CE or ArcFace and the long-tail variants.

A new method is a module like these plus its import here.
"""

from artid.training.methods.base import MethodBase
from artid.training.methods.contrastive import Contrastive, ContrastiveSettings
from artid.training.methods.dnet import DNet, DNetSettings
from artid.training.methods.simsiam import SimSiam, SimSiamSettings

__all__ = [
    "Contrastive",
    "ContrastiveSettings",
    "DNet",
    "DNetSettings",
    "MethodBase",
    "SimSiam",
    "SimSiamSettings",
]
