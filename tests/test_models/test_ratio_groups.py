"""MAGEViT(ratio_group_size=G): one masking ratio per sub-batch of G (the official per-process batch).

The default stays one ratio per forward."""
import numpy as np
import torch

import mage_mm.register  # noqa: F401
from mage_mm.models.backbones import MAGEViT
from mage_mm.models.utils.masking import mask_counts


def vit(group):
    return MAGEViT(arch=dict(embed_dims=32, num_layers=1, num_heads=4, feedforward_channels=64), codebook_size=256,
                   token_grid=8, num_legacy_class_ids=1, fake_class_id=256, ratio_group_size=group)


def test_default_is_one_ratio_per_forward():
    np.random.seed(0)
    torch.manual_seed(0)
    drop, masked = vit(None).sample_masks(12, 64)
    assert len(set(masked[:, 1:].sum(1).tolist())) == 1


def test_one_ratio_per_group_with_the_official_counts():
    model = vit(4)
    np.random.seed(3)
    expected = [mask_counts(64, float(r), 0.5)[0] for r in model.ratio_sampler.sample(3)]
    np.random.seed(3)
    torch.manual_seed(0)
    drop, masked = model.sample_masks(10, 64)  # groups of 4, 4 and 2
    counts = masked[:, 1:].sum(1).tolist()
    assert counts == [expected[0]] * 4 + [expected[1]] * 4 + [expected[2]] * 2
    assert len(set(expected)) > 1
    assert drop[:, 1:].sum(1).tolist() == [32] * 10  # every sample drops the same count (stacked tensors)
    assert bool((drop <= masked).all()) and not masked[:, 0].any()


def test_forward_with_groups_runs():
    model = vit(2)
    out = model(torch.randint(0, 256, (4, 64)), mask=True)
    assert out.latent.shape[0] == 4
