"""Tokenizer training (VQGANTokenizerTrainer): losses, GAN start, codebook monitoring, metric, Runner run."""
import glob
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine import MessageHub
from mmengine.config import Config
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from tool_utils import load_tool, run_checked

import mage_mm.models.algorithms.vqgan_trainer  # noqa: F401  registers the trainer (imports mmagic)
from mage_mm.apis import load_tokenizer, read_tokenizer
from mage_mm.datasets import packaged_photo_paths, random_crops, write_image_folder
from mage_mm.evaluation import VQReconstructionMetric, psnr
from mage_mm.models.utils.codebook import codebook_stats
from mage_mm.utils.checkpoint import safe_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs', 'tokenizer', 'vqgan_tiny-f4_1xb8-20iters_photo-crops-32px.py')
DISC = dict(type='mmagic.PatchDiscriminator', in_channels=3, base_channels=16, num_conv=2)


@pytest.fixture(scope='module')
def crops():
    images, _ = random_crops(packaged_photo_paths(), 24, 32, seed=3)
    return images  # (24, 32, 32, 3) uint8, real photo crops


@pytest.fixture(scope='module')
def image_dir(crops, tmp_path_factory):
    out = tmp_path_factory.mktemp('tok_photos')
    write_image_folder(crops, str(out))
    return str(out)


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='VQGANTokenizerTrainer', tokenizer=dict(type='MAGEVQGAN', arch='tiny'))
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def batch(crops, n=4, step=1):
    """A data batch as the default_collate'd dataloader gives it: uint8 BGR (B, 3, H, W) (step 2: 16 px)."""
    x = torch.from_numpy(crops[:n, ::step, ::step, ::-1].copy()).permute(0, 3, 1, 2).contiguous()
    return dict(inputs=x, data_samples=[DataSample() for _ in range(n)])


def wrappers(model):
    gen = OptimWrapper(torch.optim.Adam(model.tokenizer.parameters(), lr=1e-3, betas=(0.5, 0.9)))
    if model.discriminator is None:
        return gen
    disc = OptimWrapper(torch.optim.Adam(model.discriminator.parameters(), lr=1e-3, betas=(0.5, 0.9)))
    return OptimWrapperDict(tokenizer=gen, discriminator=disc)


def at_iter(i):
    MessageHub.get_current_instance().update_info('iter', i)


def images01(crops, n=4, step=1):
    return torch.from_numpy(crops[:n, ::step, ::step].copy()).permute(0, 3, 1, 2).float() / 255


def test_losses_on_a_tiny_batch_are_finite(crops):
    model = build()
    x = images01(crops)
    losses = model(x, mode='loss')
    assert set(losses) == {'loss_pixel', 'loss_perceptual', 'loss_codebook'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    # identical reconstruction: zero pixel and perceptual terms
    same = model.reconstruction_losses(x, x.clone(), torch.tensor(0.))
    assert same['loss_pixel'] == 0 and same['loss_perceptual'] == 0
    # the perceptual term grows with the distortion of the reconstruction
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    perc = [model.reconstruction_losses(x, (x + s * noise).clamp(0, 1), torch.tensor(0.))['loss_perceptual']
            for s in (0.03, 0.1, 0.3)]
    assert 0 < perc[0] < perc[1] < perc[2]
    # weights scale the terms
    heavy = build(pixel_loss_weight=2.0, perceptual_loss_weight=0.0, codebook_loss_weight=3.0)
    heavy.load_state_dict(model.state_dict(), strict=False)
    l2 = heavy(x, mode='loss')
    assert 'loss_perceptual' not in l2 and heavy.perceptual is None
    torch.testing.assert_close(l2['loss_pixel'], 2 * losses['loss_pixel'])
    torch.testing.assert_close(l2['loss_codebook'], 3 * losses['loss_codebook'])


def test_perceptual_precision_bf16_keeps_the_tokenizer_fp32(crops):
    model = build()
    fast = build(perceptual_precision='bf16')
    assert fast.perceptual.precision == 'bf16' and model.perceptual.precision is None
    x = images01(crops)
    exact, low = model(x, mode='loss'), fast(x, mode='loss')
    # the same tokenizer weights: only the LPIPS term moves, and only by bf16 rounding
    torch.testing.assert_close(low['loss_pixel'], exact['loss_pixel'])
    torch.testing.assert_close(low['loss_codebook'], exact['loss_codebook'])
    assert low['loss_perceptual'].dtype == torch.float32
    torch.testing.assert_close(low['loss_perceptual'], exact['loss_perceptual'], rtol=0.05, atol=0.0)
    sum(low.values()).backward()
    grads = [p.grad for p in fast.tokenizer.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_tokenizer_is_trainable_and_frozen_is_refused():
    model = build()
    assert all(p.requires_grad for p in model.tokenizer.parameters())
    model.train()
    assert model.tokenizer.training and not model.perceptual.training
    with pytest.raises(ValueError, match='frozen'):
        build(tokenizer=dict(type='MAGEVQGAN', arch='tiny', frozen=True))


def test_discriminator_enters_only_after_its_start(crops):
    model = build(discriminator=DISC, disc_start=2)
    ow = wrappers(model)
    data = batch(crops, step=2)
    disc_before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    for it in (0, 1):
        at_iter(it)
        out = model.train_step(data, ow)
        assert not any(k in out for k in ('loss_gan', 'loss_disc', 'gan_weight')), out.keys()
    for k, v in model.discriminator.state_dict().items():
        assert torch.equal(v, disc_before[k]), f'discriminator {k} changed before disc_start'
    at_iter(2)
    out = model.train_step(data, ow)
    assert {'loss_gan', 'loss_disc', 'gan_weight', 'disc_real', 'disc_fake'} <= set(out)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in out.values())
    assert out['gan_weight'] > 0 and out['loss_disc'] > 0
    changed = [k for k, v in model.discriminator.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, disc_before[k])]
    assert changed, 'the discriminator was not updated after disc_start'
    assert all(p.requires_grad for p in model.discriminator.parameters())


def test_a_discriminator_needs_its_optimizer(crops):
    model = build(discriminator=DISC)
    at_iter(0)
    with pytest.raises(TypeError, match='MultiOptimWrapperConstructor'):
        model.train_step(batch(crops), OptimWrapper(torch.optim.Adam(model.tokenizer.parameters())))


def test_tokenizer_update_equals_the_taming_gradient(crops):
    """The tokenizer step back-propagates recon·(∂rec + w·∂gan) + vq: same gradient as rec + w·gan + vq,
    and w is taming's ‖∇_last rec‖ / (‖∇_last gan‖ + 1e-4) · disc_weight."""
    model = build(discriminator=DISC, disc_start=0, disc_weight=0.8).double()  # float64: exact comparison
    model.train()
    x = images01(crops, step=2).double()
    recon, vq, _ = model.tokenizer(x)
    losses = model.reconstruction_losses(x, recon, vq)
    rec = losses['loss_pixel'] + losses['loss_perceptual']
    gan = model.gan_loss(model.discriminator(recon * 2 - 1), target_is_real=True, is_disc=False)
    last = model.tokenizer.decoder.conv_out.weight
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_gan = torch.autograd.grad(gan, last, retain_graph=True)[0]
    expected_w = (g_rec.norm() / (g_gan.norm() + 1e-4)).clamp(0, 1e4) * 0.8
    rec_grad, = torch.autograd.grad(rec, recon, retain_graph=True)
    gan_grad, = torch.autograd.grad(gan, recon, retain_graph=True)
    w = model.adaptive_weight(recon, rec_grad, gan_grad)
    torch.testing.assert_close(w, expected_w)

    params = list(model.tokenizer.parameters())
    full = torch.autograd.grad(rec + w * gan + losses['loss_codebook'], params, retain_graph=True)
    target = (recon * (rec_grad + w * gan_grad)).sum() + losses['loss_codebook']
    surrogate = torch.autograd.grad(target, params)
    for a, b in zip(full, surrogate):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_codebook_stats_on_a_constructed_case():
    stats = codebook_stats(torch.tensor([5., 5., 5., 5., 0., 0., 0., 0.]))
    assert stats['used_codes'] == 4 and stats['usage'] == 0.5
    assert stats['perplexity'] == pytest.approx(4.0)
    one = codebook_stats(torch.tensor([0., 7., 0.]))
    assert one['perplexity'] == pytest.approx(1.0) and one['used_codes'] == 1
    skew = codebook_stats(torch.tensor([3., 1.]))
    p = np.array([0.75, 0.25])
    assert skew['perplexity'] == pytest.approx(float(np.exp(-(p * np.log(p)).sum())))


def test_dead_codes_are_counted_and_restarted(crops):
    model = build(usage_window=3, restart_dead_codes=True, restart_interval=4)
    k = model.tokenizer.num_codes
    # codes 0..3 used at iterations 0..3; code 4 only at iteration 0; nothing else ever
    for it in range(4):
        ids = torch.tensor([[0, 1, 2, 3] + ([4] if it == 0 else [0])])
        out = model.update_codebook_usage(ids, it)
    assert out['codebook_used'] == 4 and out['codebook_perplexity'] == pytest.approx(
        codebook_stats(torch.bincount(ids.flatten(), minlength=k).float())['perplexity'])
    # at iteration 3: codes never used are 3 iterations old (dead), code 4 is too (last used at 0)
    assert out['dead_codes'] == k - 4
    dead = (3 - model.code_last_used >= 3).nonzero().flatten()
    assert 4 in dead.tolist() and 0 not in dead.tolist()
    emb = model.tokenizer.quantize.embedding.weight
    alive_before = emb[:4].clone()
    x = images01(crops)
    n = model.restart_codes(x, 3)
    assert n == k - 4
    with torch.no_grad():
        z = model.tokenizer.encode_latent(x).permute(0, 2, 3, 1).reshape(-1, emb.shape[1])
    # every restarted code is now one of the current encoder outputs; live codes are untouched
    dist = torch.cdist(emb[dead].detach(), z, compute_mode='donot_use_mm_for_euclid_dist')
    assert torch.all(dist.min(1).values < 1e-5)
    assert torch.equal(emb[:4], alive_before)
    assert model.update_codebook_usage(torch.tensor([[0]]), 4)['dead_codes'] == 0  # restarted codes get a new window


def test_train_step_logs_monitoring_and_restarts(crops):
    model = build(usage_window=1, restart_dead_codes=True)
    ow = wrappers(model)
    at_iter(0)
    out = model.train_step(batch(crops), ow)
    assert out['dead_codes'] == out['restarted_codes'] == 0  # nothing can be dead before a full window
    at_iter(1)
    out = model.train_step(batch(crops), ow)
    for key in ('loss', 'loss_pixel', 'loss_perceptual', 'loss_codebook', 'codebook_perplexity', 'codebook_used',
                'dead_codes', 'restarted_codes'):
        assert key in out and torch.isfinite(torch.as_tensor(out[key])), key
    assert out['restarted_codes'] == out['dead_codes'] > 0  # window 1: every unused code restarts at once
    torch.testing.assert_close(out['loss'], out['loss_pixel'] + out['loss_perceptual'] + out['loss_codebook'])


def test_reconstruction_metric_values(crops):
    x = images01(crops, 6)
    noisy = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    metric = VQReconstructionMetric()
    samples = [dict(gt_img=g, pred_img=p, token_ids=torch.tensor([i % 3, 5]), num_codes=8)
               for i, (g, p) in enumerate(zip(x, noisy))]
    metric.process({}, samples[:4])
    metric.process({}, samples[4:])
    res = metric.evaluate(6)
    q = lambda t: (t * 255).round() / 255  # noqa: E731  8-bit, as the metric
    expected = (10 * torch.log10(1 / (q(noisy) - q(x)).pow(2).flatten(1).mean(1))).mean()
    assert res['recon/psnr'] == pytest.approx(float(expected), rel=1e-5)
    assert 0 < res['recon/lpips'] < 1
    assert res['recon/codebook_used'] == 4 and res['recon/codebook_usage'] == 0.5
    same = VQReconstructionMetric(items=('psnr', 'lpips'))
    same.process({}, [dict(gt_img=g, pred_img=g) for g in x])
    out = same.evaluate(6)
    assert out['recon/lpips'] == 0 and out['recon/psnr'] == pytest.approx(100.0)
    assert float(psnr(x, x).min()) == pytest.approx(100.0)
    with pytest.raises(ValueError, match='items'):
        VQReconstructionMetric(items=('fid', ))


def test_predict_gives_what_the_metric_needs(crops):
    model = build()
    data = model.data_preprocessor(batch(crops, 3), False)
    samples = model(**data, mode='predict')
    assert len(samples) == 3
    s = samples[0].to_dict()
    assert s['gt_img'].shape == s['pred_img'].shape == (3, 32, 32) and s['token_ids'].shape == (64, )
    assert s['num_codes'] == 256 and 0 <= float(s['pred_img'].min()) and float(s['pred_img'].max()) <= 1
    torch.testing.assert_close(s['gt_img'], images01(crops, 1)[0])  # BGR batch -> RGB [0, 1]


@pytest.mark.integration
@pytest.mark.slow
def test_tools_train_with_validation_export_and_load_into_mage(image_dir, tmp_path):
    """tools/train.py on the tiny config: GAN from iteration 2, PSNR/LPIPS validation, then both recipes
    that hand the trained tokenizer to MAGE (Runner checkpoint + prefix, exported file)."""
    work = str(tmp_path / 'tok')
    log = run_checked([sys.executable, 'tools/train.py', CFG, '--work-dir', work, '--cfg-options',
                f'train_dataloader.dataset.data_root={image_dir}', f'val_dataloader.dataset.data_root={image_dir}',
                'train_cfg.max_iters=4', 'train_cfg.val_interval=4', 'model.disc_start=2',
                'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=1',
                'train_dataloader.batch_size=4'])
    assert 'recon/psnr' in log and 'recon/lpips' in log and 'loss_gan' in log
    scalars = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    entries = [json.loads(line) for line in open(scalars[0])]
    val = [e for e in entries if 'recon/psnr' in e]
    assert len(val) == 1 and val[0]['step'] == 4  # logged at the iteration (log_metric_by_epoch=False)
    assert 0 < val[0]['recon/psnr'] < 100 and 0 < val[0]['recon/lpips'] < 1
    assert 0 < val[0]['recon/codebook_usage'] <= 1
    train = [e for e in entries if 'iter' in e]
    assert [e['iter'] for e in train] == [1, 2, 3, 4]
    assert 'loss_gan' not in train[1] and 'loss_gan' in train[2]  # iteration 3 is index 2 (0-based start 2)

    ckpt = osp.join(work, 'iter_4.pth')
    sd = safe_load(ckpt)['state_dict']
    assert any(k.startswith('tokenizer.') for k in sd) and any(k.startswith('discriminator.') for k in sd)

    # the export tool writes the plain MAGEVQGAN state dict with its arch
    tool = load_tool('model_converters/export_vqgan_tokenizer')
    exported = str(tmp_path / 'vqgan_tokenizer.pth')
    assert tool.main([work, exported]) == 0  # a work dir: its last_checkpoint
    out = safe_load(exported)
    assert out['meta']['mage_mm']['tokenizer_arch'] == 'tiny'  # data, not config text
    assert set(out['state_dict']) == {k[len('tokenizer.'):] for k in sd if k.startswith('tokenizer.')}
    assert tool.main([str(tmp_path / 'missing.pth'), exported + '.x']) == 2

    mage_cfg = Config.fromfile(osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb32-2000iters_fashion-mnist-32px.py'))
    for init_cfg in (dict(type='Pretrained', checkpoint=ckpt, prefix='tokenizer.'),
                     dict(type='Pretrained', checkpoint=exported)):
        mage_cfg.model.backbone.tokenizer.init_cfg = init_cfg
        mage = MODELS.build(mage_cfg.model)
        mage.init_weights()
        for k, v in mage.tokenizer.state_dict().items():
            assert torch.equal(v, sd['tokenizer.' + k]), (init_cfg, k)
        assert not any(p.requires_grad for p in mage.tokenizer.parameters())

    tok = load_tokenizer(ckpt)
    assert tok.frozen and tok.num_codes == 256
    assert read_tokenizer(exported)[1] == 'tiny'


@pytest.mark.parametrize('name', sorted(osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs', 'tokenizer',
                                                                                       '*.py'))))
def test_tokenizer_configs_build(name):
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'tokenizer', name))
    assert 'mage_mm.models.algorithms.vqgan_trainer' in cfg.custom_imports.imports
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    tok_params = {id(p) for p in model.tokenizer.parameters()}
    assert set(wrapper.optim_wrappers) == ({'tokenizer', 'discriminator'} if model.discriminator else {'tokenizer'})
    opt = wrapper['tokenizer'].optimizer
    assert {id(p) for g in opt.param_groups for p in g['params']} == tok_params  # never the LPIPS net
    if 'official' in name:
        assert sum(p.numel() for p in model.tokenizer.parameters()) == 54_515_587  # MAGE.md's count
        assert model.tokenizer.downsample_factor == 16 and model.tokenizer.num_codes == 1024
    assert cfg.val_evaluator.type == 'VQReconstructionMetric'
