"""MAGEGenerator: mmagic's sampling contract, checkpoints, the unconditional inferencer, official parity.

Tiny-model tests use a *randomly initialised* tiny MAGE checkpoint (images are
noise); the parity test loads the converted official weights of the dump.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from generation_utils import TINY_GEN_CFG, TINY_PRETRAIN_CFG
from mmengine.config import Config
from parity_utils import backbone_cfg, token_grid, tokenizer_cfg
from PIL import Image

import mage_mm.models.generators.mage_generator  # noqa: F401  registers MAGEGenerator in mmagic
from mage_mm.apis import init_generator
from mage_mm.converters import convert_official
from mage_mm.models.generators import DecodingOptions, ReplaySampler, iterative_decode
from mage_mm.models.generators.mage_generator import MAGEGenerator


@pytest.fixture(scope='module')
def generator(tiny_mage_ckpt):
    return init_generator(TINY_GEN_CFG, tiny_mage_ckpt)


def test_tiny_generation_config_scope_and_imports():
    # its network is configs/_base_/models/mage_vit-tiny.py, the pretraining config's (one file, no copy to drift)
    gen = Config.fromfile(TINY_GEN_CFG)
    assert gen.model.type == 'MAGEGenerator' and gen.default_scope == 'mmagic'
    assert {'mage_mm.register', 'mage_mm.models.generators.mage_generator',
            'mage_mm.evaluation.metrics'} <= set(gen.custom_imports.imports)


@pytest.mark.parametrize('name', ['base-p16', 'large-p16'])
def test_full_size_configs_have_official_settings_and_mage_keys(name):
    from mmagic.registry import MODELS
    from mmpretrain.registry import MODELS as PRETRAIN
    cfg = Config.fromfile(osp.join(osp.dirname(TINY_GEN_CFG), f'mage-gen_vit-{name}_iter20-temp6-50k_in1k-256px.py'))
    model_cfg = dict(cfg.model, _scope_='mmagic')
    assert (model_cfg['num_iter'], model_cfg['choice_temperature'], model_cfg['schedule']) == (20, 6.0, 'cosine')
    assert cfg.test_evaluator.metrics[0].fake_nums == 50000 and cfg.test_dataloader.batch_size == 32
    pre_cfg = Config.fromfile(osp.join(osp.dirname(TINY_PRETRAIN_CFG),
                                       f'mage_vit-{name.split("-")[0]}-p16_8xb512-amp-coslr-1600e_in1k-256px.py'))
    pre_cfg.model.backbone.tokenizer.init_cfg = None
    with torch.device('meta'):
        gen = MODELS.build(model_cfg)
        pre = PRETRAIN.build(dict(pre_cfg.model, _scope_='mmpretrain'))
    assert gen.image_size == (256, 256)
    assert {k: v.shape for k, v in gen.state_dict().items()} == {k: v.shape for k, v in pre.state_dict().items()}


def test_sampling_contract(generator):
    out = generator(dict(num_batches=3, sample_model='orig'))
    assert len(out) == 3
    for s in out:
        assert s.fake_img.shape == (3, 32, 32) and s.fake_img.dtype == torch.float32
        assert 0 <= float(s.fake_img.min()) and float(s.fake_img.max()) <= 255
        assert s.noise.dtype == torch.int64 and s.noise.dim() == 0
        assert s.latent.shape == (64, ) and int(s.latent.max()) < 256
        assert s.sample_model == 'orig'
    # fake_img is the BGR, 0-255 version of the RGB [0, 1] decoding of the seed's tokens
    seeds = [int(s.noise) for s in out]
    rgb = generator.generate(seeds)
    assert torch.allclose(torch.stack([s.fake_img for s in out]), rgb[:, [2, 1, 0]] * 255, atol=1e-4)
    assert torch.equal(torch.stack([s.latent for s in out]), generator.generate_tokens(seeds))


def test_seeds_as_noise_are_batch_independent(generator):
    a = generator(dict(noise=torch.tensor([11, 12, 13])))
    b = generator(dict(num_batches=1, sample_kwargs=dict(seeds=[12])))
    assert torch.equal(a[1].fake_img, b[0].fake_img) and int(b[0].noise) == 12
    c = generator(torch.tensor([13]))  # BaseGAN also accepts the noise tensor directly
    assert torch.equal(a[2].latent, c[0].latent)
    torch.manual_seed(7)
    d1 = generator(dict(num_batches=2))
    torch.manual_seed(7)
    d2 = generator(dict(num_batches=2))
    assert [int(s.noise) for s in d1] == [int(s.noise) for s in d2]  # seeds follow torch's global RNG


def test_sample_kwargs_and_errors(generator):
    out = generator(dict(num_batches=1, sample_kwargs=dict(num_iter=2, schedule='linear', top_k=5, seeds=[3])))
    assert out[0].sample_kwargs['num_iter'] == 2
    with pytest.raises(ValueError, match='unknown decoding option'):
        generator(dict(num_batches=1, sample_kwargs=dict(steps=3)))
    with pytest.raises(ValueError, match='num_iter'):
        generator(dict(num_batches=1, sample_kwargs=dict(num_iter=0)))
    with pytest.raises(ValueError, match='EMA'):
        generator(dict(num_batches=1, sample_model='ema'))
    with pytest.raises(ValueError, match='num_batches'):
        generator(dict())
    with pytest.raises(ValueError, match='seeds'):
        generator(dict(num_batches=3, noise=torch.tensor([1, 2])))
    with pytest.raises(NotImplementedError, match='configs/mage'):
        generator.train_step({}, None)


def test_checkpoint_errors_are_clear(tiny_mage_ckpt, tmp_path):
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        init_generator(TINY_GEN_CFG, str(tmp_path / 'missing.pth'))
    # a tokenizer that does not match the backbone's codebook is refused at build time
    with pytest.raises(ValueError, match='tokenizer has 1024 codes'):
        init_generator(TINY_GEN_CFG, cfg_options={'model.backbone.tokenizer.arch': 'parity-tiny'})
    # a checkpoint of another model size names the mismatching tensors
    with pytest.raises(ValueError, match=r'shapes differ \(backbone\.'):
        init_generator(TINY_GEN_CFG, tiny_mage_ckpt, cfg_options={'model.backbone.arch.feedforward_channels': 128})
    with pytest.raises(ValueError, match='tokenizer/model size mismatch'):
        init_generator(TINY_GEN_CFG, tiny_mage_ckpt, cfg_options={'model.backbone.tokenizer.arch': dict(
            _delete_=True, ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=32, num_codes=256)})
    official = {k.replace('backbone.', ''): v
                for k, v in torch.load(tiny_mage_ckpt, weights_only=True)['state_dict'].items()
                if k.startswith('backbone.')}
    torch.save(official, tmp_path / 'official_layout.pth')
    with pytest.raises(ValueError, match='mage_to_mmpretrain'):
        init_generator(TINY_GEN_CFG, str(tmp_path / 'official_layout.pth'))


def test_unconditional_inferencer(tiny_mage_ckpt, tmp_path):
    from mmagic.apis.inferencers import Inferencers
    inferencer = Inferencers(task='unconditional', config=TINY_GEN_CFG, ckpt=tiny_mage_ckpt, device='cpu',
                             extra_parameters=dict(num_batches=4), seed=3)
    # mmagic's postprocess returns the first sample's dict and the visualised batch (RGB in [0, 1])
    first, images = inferencer(result_out_dir=str(tmp_path / 'samples.png'))
    assert images.shape == (4, 3, 32, 32)
    assert first['fake_img'].shape == (3, 32, 32) and first['noise'].dim() == 0 and first['latent'].shape == (64, )
    grid = np.asarray(Image.open(tmp_path / 'samples.png'))
    assert grid.ndim == 3 and grid.shape[2] == 3
    model = inferencer.inferencer.model
    assert torch.allclose(images[0], model.generate([int(first['noise'])])[0], atol=1e-4)
    # given seeds (noise) are honoured, and the same seed gives the same image
    again, images2 = inferencer(extra_parameters=dict(noise=torch.tensor([int(first['noise']), 5]), num_batches=2))
    assert torch.equal(again['fake_img'], first['fake_img']) and images2.shape == (2, 3, 32, 32)


@torch.no_grad()
def test_converted_official_checkpoint_reproduces_the_official_generation(parity_dump, tmp_path):
    """The dump's official MAGE weights, converted, load into MAGEGenerator; its decoding
    (network call + loop) reproduces the official trajectory, tokens and images."""
    m, meta = parity_dump['config']['mage'], parity_dump['meta']
    n = token_grid(parity_dump)**2
    sd, layout = convert_official(parity_dump['state_dicts']['mage'])
    assert layout == 'pretrain'
    torch.save(dict(state_dict=sd), tmp_path / 'official_converted.pth')
    cfg = Config(dict(model=dict(
        type='MAGEGenerator', backbone=backbone_cfg(parity_dump, tokenizer=tokenizer_cfg(parity_dump)),
        neck=dict(type='MAGEPretrainDecoder', num_tokens=n, in_channels=m['embed_dim'],
                  embed_dims=m['decoder_embed_dim'], num_layers=m['decoder_depth'],
                  num_heads=m['decoder_num_heads'], mlp_ratio=m['mlp_ratio']),
        head=dict(type='MAGEPretrainHead', in_channels=m['decoder_embed_dim'], embed_dims=m['embed_dim'],
                  vocab_size=meta['vocab_size'], codebook_size=meta['codebook_size']))))
    model = init_generator(cfg, str(tmp_path / 'official_converted.pth'))
    assert isinstance(model, MAGEGenerator)
    g = parity_dump['generation_loop']
    init = torch.full(g['final_token_ids'].shape, model.mask_id, dtype=torch.long)
    replay = ReplaySampler(g['step_categorical_samples'], g['step_gumbel_draws'])
    out = iterative_decode(model._logits, init, mask_id=model.mask_id, codebook_size=meta['codebook_size'],
                           sampler=replay, record_steps=True,
                           options=DecodingOptions(num_iter=g['num_iter'], choice_temperature=g['choice_temperature']))
    assert torch.equal(out.step_input_ids, g['step_input_ids'][:, :, 1:])
    assert torch.equal(out.token_ids, g['final_token_ids'])
    # the official RNG order through the generator's own API (seed_mode='batch')
    tokens = model.generate_tokens([g['seed']] * g['batch'], seed_mode='batch', num_iter=g['num_iter'],
                                   choice_temperature=g['choice_temperature'])
    assert torch.equal(tokens, g['final_token_ids'])
    images = model.tokens_to_images(tokens)
    torch.testing.assert_close(images, g['images'].clamp(0, 1), atol=1e-5, rtol=1e-5)

