"""Fast paths of the network: the nothing-dropped masked forward (same values, no graph breaks),
the batched VQGAN decode (byte-identical images), torch.compile of training and generation."""
import glob
import os.path as osp

import pytest
import torch
from generation_utils import TINY_GEN_CFG, TINY_PRETRAIN_CFG, real_photo_folder, save_random_tiny_checkpoint
from mmengine.config import Config
from mmengine.registry import DefaultScope
from tool_utils import load_tool


@pytest.fixture(scope='module')
def mage():
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(Config.fromfile(TINY_PRETRAIN_CFG).model)
    model.init_weights()
    return model.eval()


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    return save_random_tiny_checkpoint(str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth'))


def masked_ids(model, seed=0, batch=3):
    g = torch.Generator().manual_seed(seed)
    n = model.backbone.num_tokens
    ids = torch.randint(0, model.backbone.codebook_size, (batch, n), generator=g)
    unknown = torch.rand(batch, n, generator=g) < 0.6
    return ids.masked_fill(unknown, model.backbone.mask_id)


@torch.no_grad()
def test_nothing_dropped_path_equals_the_general_path_bitwise(mage):
    ids = masked_ids(mage)
    all_mask = ids == mage.backbone.mask_id
    full = torch.cat([all_mask.new_zeros(all_mask.shape[0], 1), all_mask], dim=1)
    general = mage.predict_logits(ids, torch.zeros_like(full), full)
    fast = mage.predict_logits(ids, None, all_mask)
    assert torch.equal(general, fast)
    out = mage.backbone(ids, mask=(None, all_mask))
    assert out.token_drop_mask is None and torch.equal(out.token_all_mask, full)


def test_nothing_dropped_path_has_no_graph_breaks(mage):
    import torch._dynamo as dynamo
    ids = masked_ids(mage)
    all_mask = ids == mage.backbone.mask_id
    dynamo.reset()
    with torch.no_grad():
        explained = dynamo.explain(mage.predict_logits)(ids, None, all_mask)
    assert explained.graph_break_count == 0, explained.break_reasons
    # the faithful general path (explicit drop mask) still breaks: the data-dependent checks and shapes
    full = torch.cat([all_mask.new_zeros(all_mask.shape[0], 1), all_mask], dim=1)
    dynamo.reset()
    with torch.no_grad():
        general = dynamo.explain(mage.predict_logits)(ids, torch.zeros_like(full), full)
    assert general.graph_break_count > 0


def test_batched_decode_gives_the_same_png_bytes_as_one_image_at_a_time(ckpt, tmp_path):
    from mage_mm.apis import init_generator, save_png, to_uint8
    model = init_generator(TINY_GEN_CFG, ckpt)
    g = torch.Generator().manual_seed(1)
    for call in range(2):  # the first call of a shape calibrates, the second uses the decision
        ids = torch.randint(0, model.backbone.codebook_size, (5, model.backbone.num_tokens), generator=g)
        batched = to_uint8(model.tokens_to_images(ids))
        with torch.no_grad():
            single = to_uint8(torch.cat([model.tokenizer.decode(i[None], grid=model.token_grid) for i in ids]))
        for j, (a, b) in enumerate(zip(batched, single)):
            pa, pb = tmp_path / f'a{call}_{j}.png', tmp_path / f'b{call}_{j}.png'
            save_png(a, str(pa))
            save_png(b, str(pb))
            assert pa.read_bytes() == pb.read_bytes(), (call, j)
    assert list(model._batched_decode_ok.values())[0] in (True, False)


@pytest.mark.integration
def test_compile_runs_for_generation_and_training(ckpt, tmp_path):
    from mage_mm.apis import init_generator
    torch._dynamo.reset()
    model = init_generator(TINY_GEN_CFG, ckpt, compile=True)
    images = model.generate([0, 1], num_iter=2)
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()
    eager = init_generator(TINY_GEN_CFG, ckpt).generate([0, 1], num_iter=2)
    assert (images - eager).abs().max() < 0.05  # the same decoding (compiled kernels may round differently)
    photos = real_photo_folder(str(tmp_path / 'photos'), 8, 32)
    work = str(tmp_path / 'work')
    load_tool('train').main([TINY_PRETRAIN_CFG, '--work-dir', work, '--compile', '--cfg-options',
                             f'train_dataloader.dataset.data_root={photos}', 'train_cfg.max_iters=2',
                             'default_hooks.checkpoint.interval=2'])
    assert osp.isfile(osp.join(work, 'iter_2.pth')) and glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
