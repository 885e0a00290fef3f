"""Class-conditional configs: each generation config holds exactly the network of its fine-tune config."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mage_mm.register  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAIRS = [  # (fine-tune config in configs/mage, generation config in configs/generation, classes)
    ('mage-cond_vit-tiny_1xb8-20iters_photo-crops-5cls-32px.py',
     'mage-cond-gen_vit-tiny_iter8-temp6_photo-crops-5cls-32px.py', 5),
    ('mage-cond_vit-tiny_1xb32-600iters_fashion-mnist-32px.py',
     'mage-cond-gen_vit-tiny_iter8-temp6_fashion-mnist-32px.py', 10),
    ('mage-cond_vit-base-p16_8xb256-amp-coslr-100e_in1k-256px.py',
     'mage-cond-gen_vit-base-p16_iter20-temp6-50k_in1k-256px.py', 1000),
    ('mage-cond_vit-large-p16_8xb256-amp-coslr-100e_in1k-256px.py',
     'mage-cond-gen_vit-large-p16_iter20-temp6-50k_in1k-256px.py', 1000),
]


@pytest.mark.parametrize('train_cfg,gen_cfg,num_classes', PAIRS)
def test_generation_config_matches_finetune_config(train_cfg, gen_cfg, num_classes):
    from mmagic.registry import MODELS as MMAGIC
    from mmpretrain.registry import MODELS

    import mage_mm.models.generators.mage_cond_generator  # noqa: F401
    train = Config.fromfile(osp.join(ROOT, 'configs', 'mage', train_cfg))
    gen = Config.fromfile(osp.join(ROOT, 'configs', 'generation', gen_cfg))
    assert train.model.type == 'MAGECond' and gen.model.type == 'MAGECondGenerator'
    # the paper's parts of the recipe, and our stated defaults
    assert train.model.train_encoder is False and train.model.p_uncond == 0.1
    assert train.model.num_classes == train.model.neck.num_classes == gen.model.neck.num_classes == num_classes
    assert train.train_dataloader.dataset.with_label is True
    assert gen.model.guidance == 1.0 and gen.model.guidance_schedule == 'constant'
    with torch.device('meta'):
        t = MODELS.build(dict(train.model, _scope_='mmpretrain', init_checkpoint=None))
        g = MMAGIC.build(dict(gen.model, _scope_='mmagic'))
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(t) == shapes(g)
    assert shapes(t)['neck.class_embed.weight'][0] == num_classes + 1
    # frozen encoder: only decoder, class embedding and head train
    trainable = {n.split('.')[0] for n, p in t.named_parameters() if p.requires_grad}
    assert trainable == {'neck', 'head'}
