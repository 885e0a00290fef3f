"""The opt-in fast-path levers (``attention_precision='follow'``, ``fused_optimizer=True``).

Each lever runs on the tiny model: outputs finite and close to the faithful path within the stated
tolerance; without the keys nothing changes (the parity tests cover the default values).
"""
import copy
import glob
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from generation_utils import TINY_GEN_CFG, TINY_PRETRAIN_CFG, real_photo_folder, save_random_tiny_checkpoint
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from tool_utils import load_tool

from mage_mm.engine.precision import apply_precision, set_attention_precision, set_fused_optimizer
from mage_mm.models.utils.transformer import Attention


def build_tiny(cfg):
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(copy.deepcopy(cfg.model))
        model.init_weights()
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    return model, optim


def test_config_keys_and_defaults():
    cfg = Config.fromfile(TINY_PRETRAIN_CFG)
    before = cfg.to_dict()
    apply_precision(cfg)
    assert cfg.to_dict() == before  # no key, no flag: the config as written (fp32 attention, unfused AdamW)
    cfg = Config.fromfile(TINY_PRETRAIN_CFG)
    cfg.attention_precision = 'follow'
    cfg.fused_optimizer = True
    apply_precision(cfg, 'bf16', device='cpu')
    assert cfg.model.backbone.fp32_attention is False and cfg.model.neck.fp32_attention is False
    assert cfg.optim_wrapper.optimizer.fused is True and cfg.optim_wrapper.type == 'CPUAutocastOptimWrapper'
    # the flags win over the keys
    apply_precision(cfg, attention_precision='fp32', fused_optimizer=False)
    assert cfg.model.backbone.fp32_attention is True and 'fused' not in cfg.optim_wrapper.optimizer
    with pytest.raises(ValueError, match='attention_precision must be one of'):
        set_attention_precision(dict(type='MAGEViT'), 'bf16')
    lars = dict(type='OptimWrapper', optimizer=dict(type='MAGELARS', lr=0.1))
    assert set_fused_optimizer(lars, True) is False and 'fused' not in lars['optimizer']  # no fused LARS
    gen = Config.fromfile(TINY_GEN_CFG)
    apply_precision(gen, 'bf16', device='cpu', attention_precision='follow')
    assert gen.model.backbone.fp32_attention is False and gen.model.neck.fp32_attention is False


def test_low_precision_attention_with_dropout_matches_the_math():
    """The explicit CPU path (training, dropout): the same dropout draws as a reference computed in fp32."""
    torch.manual_seed(0)
    attn = Attention(32, 4, attn_drop=0.3, fp32_attention=False).train()
    x = torch.randn(2, 9, 32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        torch.manual_seed(5)
        out = attn(x)
        qkv = attn.qkv(x).reshape(2, 9, 3, 4, 8)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    q, k, v = qkv.float().permute(2, 0, 3, 1, 4).unbind(0)
    probs = ((q @ k.transpose(-2, -1)) * 8**-0.5).softmax(-1)
    torch.manual_seed(5)  # the explicit path draws its mask on a bf16 tensor of this shape
    keep = F.dropout(torch.ones_like(probs, dtype=torch.bfloat16), 0.3, training=True).float()
    mixed = (probs * keep) @ v
    ref = attn.proj(mixed.transpose(1, 2).reshape(2, 9, 32))
    assert (out.float() - ref).abs().max() < 0.05  # bf16 q·kᵀ, softmax and ·v against fp32
    # the official fp32 attention (default) is unchanged by the lever's code path
    attn.fp32_attention = True
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert torch.isfinite(attn(x)).all()


@torch.no_grad()
def test_attention_follow_logits_close_to_fp32_attention():
    cfg = Config.fromfile(TINY_PRETRAIN_CFG)
    model, _ = build_tiny(cfg)
    model.eval()
    g = torch.Generator().manual_seed(0)
    n = model.backbone.num_tokens
    ids = torch.randint(0, 256, (3, n), generator=g)
    masked = torch.rand(3, n, generator=g) < 0.5
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ref = model.predict_logits(ids, None, masked).float()
        for m in model.modules():
            if isinstance(m, Attention):
                m.fp32_attention = False
        fast = model.predict_logits(ids, None, masked).float()
    assert torch.isfinite(fast).all()
    assert (fast - ref).abs().max() < 0.1 * ref.abs().max()  # bf16 attention: within 10 % of the logit range


def test_fused_adamw_train_steps_agree_with_the_faithful_optimizer():
    """Three fp32 steps of the tiny model: fused AdamW against torch's default loop, within 1e-5."""
    cfg = Config.fromfile(TINY_PRETRAIN_CFG)
    fused_cfg = Config.fromfile(TINY_PRETRAIN_CFG)
    apply_precision(fused_cfg, fused_optimizer=True)
    params = {}
    for name, c in (('faithful', cfg), ('fused', fused_cfg)):
        model, optim = build_tiny(c)
        model.train()
        g = torch.Generator().manual_seed(1)
        for step in range(3):
            torch.manual_seed(10 + step)  # the same masks and dropout draws on both sides
            np.random.seed(10 + step)
            data = dict(inputs=torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=g),
                        data_samples=[DataSample() for _ in range(4)])
            log = model.train_step(data, optim)
            assert torch.isfinite(log['loss'])
        params[name] = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
        if name == 'fused':
            assert all(group.get('fused') for group in optim.optimizer.param_groups)
    diff = max((params['faithful'][k] - params['fused'][k]).abs().max().item() for k in params['faithful'])
    assert diff < 1e-5, diff


@pytest.mark.integration
def test_tools_take_the_lever_flags(tmp_path):
    photos = real_photo_folder(str(tmp_path / 'photos'), 8, 32)
    work = str(tmp_path / 'work')
    load_tool('train').main([TINY_PRETRAIN_CFG, '--work-dir', work, '--precision', 'bf16', '--attention-precision',
                             'follow', '--fused-optimizer', '--cfg-options',
                             f'train_dataloader.dataset.data_root={photos}', 'train_cfg.max_iters=2',
                             'default_hooks.checkpoint.interval=2'])
    assert osp.isfile(osp.join(work, 'iter_2.pth')) and glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    from mage_mm.apis import init_generator
    ckpt = save_random_tiny_checkpoint(str(tmp_path / 'tiny.pth'))
    model = init_generator(TINY_GEN_CFG, ckpt, precision='bf16', attention_precision='follow')
    assert not model.backbone.blocks[0].attn.fp32_attention
    images = model.generate([0, 1], num_iter=2)
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()


def test_released_encoder_keeps_generation_and_refuses_encoding(tmp_path):
    from mage_mm.apis import init_generator
    ckpt = save_random_tiny_checkpoint(str(tmp_path / 'tiny.pth'))
    model = init_generator(TINY_GEN_CFG, ckpt)
    before = model.generate([0, 1], num_iter=2)
    model.tokenizer.release_encoder()
    assert not any(k.startswith('backbone.tokenizer.encoder.') for k in model.state_dict())
    assert torch.equal(model.generate([0, 1], num_iter=2), before)  # generation never encodes
    with pytest.raises(RuntimeError, match='released its encoder'):
        model.tokenizer.encode(torch.rand(1, 3, 32, 32))


def test_low_precision_decode_is_channels_last_and_close_to_fp32(tmp_path):
    from mage_mm.apis import init_generator
    ckpt = save_random_tiny_checkpoint(str(tmp_path / 'tiny.pth'))
    model = init_generator(TINY_GEN_CFG, ckpt)
    ids = torch.randint(0, model.backbone.codebook_size, (3, model.backbone.num_tokens),
                        generator=torch.Generator().manual_seed(2))
    ref = model.tokens_to_images(ids)
    conv = next(m for m in model.tokenizer.decoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()  # fp32 (faithful): the layout of the official decode
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        contiguous = model.tokenizer.decode(ids, grid=model.token_grid).float()  # bf16, the official layout
    model.precision = 'bf16'
    low = model.tokens_to_images(ids)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    # measured with random weights: bf16 itself moves pixels by up to 0.15 (mean 0.009); the layout by 0.023
    assert torch.isfinite(low).all() and (low - ref).abs().mean() < 0.02
    assert (low - contiguous).abs().max() < 0.05
    model.precision = 'fp32'
    assert torch.equal(model.tokens_to_images(ids), ref) and conv.weight.is_contiguous()  # back to the exact bits
