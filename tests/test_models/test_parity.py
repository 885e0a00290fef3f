"""Parity with the official MAGE code (dump path from MAGE_PARITY_DUMP).

Every size, ratio and setting is read from the dump, so dumps made with other
seeds, batch sizes and mask ratios pass unchanged. Tolerances follow the
dump's README and are absolute (``rtol=0``: a relative term would loosen the
bound by the size of the value, to ≈ 8e-5 on a loss of 6.9): token ids and masks
exact, tensors to 1e-5, logits to 1e-4, the VQ loss to 1e-6.
"""
import os.path as osp

import torch
from mmengine.config import Config
from parity_utils import backbone_cfg, build_classifier, build_mage, build_tokenizer, tokenizer_cfg

from mage_mm.models.utils.masking import mask_counts

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROBE_BASE = osp.join(ROOT, 'configs', 'mage', 'benchmarks', '_base_', 'vit-base-p16_linear-probe.py')


def test_tokenizer_parity(parity_dump):
    tok = build_tokenizer(parity_dump)
    ref = parity_dump['vqgan']
    images = parity_dump['images']
    with torch.no_grad():
        z = tok.encode_latent(images)
        torch.testing.assert_close(z, ref['encoder_out'], atol=1e-5, rtol=0)
        z_q, vq_loss, ids = tok.quantize(z)
        assert torch.equal(ids, ref['token_ids'])
        assert torch.equal(tok.encode(images), ref['token_ids'])
        torch.testing.assert_close(z_q, ref['z_q'], atol=1e-5, rtol=0)
        torch.testing.assert_close(vq_loss, ref['vq_loss'], atol=1e-6, rtol=0)
        torch.testing.assert_close(tok.ids_to_latent(ref['token_ids']), ref['z_from_ids'], atol=1e-5, rtol=0)
        decoded = tok.decode(ref['token_ids'], clamp=False)
        torch.testing.assert_close(decoded, ref['decoded_from_ids'], atol=1e-5, rtol=0)
        torch.testing.assert_close(tok(images)[0], ref['reconstruction'], atol=1e-5, rtol=0)
        torch.testing.assert_close(tok.decode(ref['token_ids']), ref['decoded_from_ids'].clamp(0, 1), atol=1e-5, rtol=0)


def test_pretrain_forward_parity(parity_dump):
    model = build_mage(parity_dump)
    ref = parity_dump['mage_train']
    ids = model.tokenize(parity_dump['images'])
    assert torch.equal(ids, ref['gt_token_ids'])
    drop, all_ = ref['token_drop_mask'].bool(), ref['token_all_mask'].bool()
    n = ids.shape[1]
    with torch.no_grad():
        out = model.backbone(ids, mask=(drop, all_))
        torch.testing.assert_close(out.latent, ref['encoder_out'], atol=1e-5, rtol=0)
        input_ids = model.backbone._with_class_slot(ids).masked_fill(out.token_all_mask, model.backbone.mask_id)
        assert torch.equal(input_ids, ref['encoder_input_ids'])
        logits = model.predict_logits(ids, drop, all_)
        torch.testing.assert_close(logits, ref['logits'], atol=1e-4, rtol=0)
        per_token = model.head.per_token_loss(logits, ids)
        torch.testing.assert_close(per_token, ref['per_token_loss'], atol=1e-5, rtol=0)
        feats = model.neck(out.latent, out.token_drop_mask, out.token_all_mask)
        loss = model.head.loss(feats, ids, out.token_all_mask, model.backbone.word_embeddings)
        torch.testing.assert_close(loss, ref['loss'], atol=1e-5, rtol=0)
    assert n == model.backbone.num_tokens


def test_generation_step_parity(parity_dump):
    """One decoding iteration: nothing dropped, the encoder sees all tokens."""
    model = build_mage(parity_dump)
    ref = parity_dump['mage_generation_step']
    input_ids = ref['input_ids']
    bb = model.backbone
    all_ = ref['token_all_mask'].bool()
    assert torch.equal(all_, input_ids == bb.mask_id)
    ids = input_ids[:, 1:]
    with torch.no_grad():
        x = bb.token_emb(input_ids)
        torch.testing.assert_close(x, ref['token_emb_out'], atol=1e-5, rtol=0)
        for i, block in enumerate(bb.blocks):
            x = block(x)
            torch.testing.assert_close(x, ref['encoder_block_outs'][i], atol=1e-5, rtol=0)
        out = bb(ids, mask=(torch.zeros_like(all_), all_))
        torch.testing.assert_close(out.latent, ref['encoder_out'], atol=1e-5, rtol=0)
        logits = model.predict_logits(ids, torch.zeros_like(all_), all_)
        torch.testing.assert_close(logits, ref['logits'], atol=1e-4, rtol=0)


def test_classifier_parity(parity_dump):
    for key in ('vit_global_pool', 'vit_cls_token'):
        model = build_classifier(parity_dump, key)
        ref = parity_dump[key]
        data = model.data_preprocessor(dict(inputs=list(parity_dump['images'] * 255.0)))
        with torch.no_grad():
            feats = model.extract_feat(parity_dump['images'])[-1]
            torch.testing.assert_close(feats, ref['features'], atol=1e-5, rtol=0)
            logits = model.head(model.extract_feat(data['inputs']))
            torch.testing.assert_close(logits, ref['logits'], atol=1e-4, rtol=0)


def test_mask_counts_for_the_dumps_ratio(parity_dump):
    """mask_counts gives the official (masked, dropped) counts for the dump's ratio; every sample has them."""
    ref, m = parity_dump['mage_train'], parity_dump['config']['mage']
    n = ref['gt_token_ids'].shape[1]
    masked, dropped = mask_counts(n, float(ref['mask_ratio']), m['mask_ratio_min'])
    assert (masked, dropped) == (ref['num_masked_per_sample'], ref['num_dropped_per_sample'])
    drop, all_ = ref['token_drop_mask'].bool(), ref['token_all_mask'].bool()
    assert not drop[:, 0].any() and not all_[:, 0].any()  # the class slot is never masked
    assert drop[:, 1:].sum(1).tolist() == [dropped] * drop.shape[0]
    assert all_[:, 1:].sum(1).tolist() == [masked] * all_.shape[0]
    assert (drop <= all_).all()


class _PinnedRatio:
    """The dump pins the masking ratio (the official truncnorm draw replaced by a constant)."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio

    def sample(self, size=None):
        return self.ratio


def test_masks_follow_the_official_random_draws(parity_dump):
    """Same torch seed → the same masks as the official forward (one torch.rand(B, N) after tokenising),
    and the loss through loss() equals the official loss through forward()."""
    model = build_mage(parity_dump)
    ref = parity_dump['mage_train']
    assert bool(ref['masks_equal_via_forward'])  # the official forward() drew the recorded masks
    ratio = float(ref['mask_ratio'])
    model.backbone.ratio_sampler = _PinnedRatio(ratio)
    batch, n = ref['gt_token_ids'].shape
    torch.manual_seed(int(ref['noise_seed']))
    drop, all_ = model.backbone.sample_masks(batch, n, ratio=ratio)
    assert torch.equal(drop, ref['token_drop_mask'].bool())
    assert torch.equal(all_, ref['token_all_mask'].bool())
    torch.manual_seed(int(ref['noise_seed']))
    with torch.no_grad():
        loss = model.loss(parity_dump['images'], [])['loss']
    torch.testing.assert_close(loss, ref['loss_via_forward'], atol=1e-5, rtol=0)


def test_linear_probe_bn_head_parity(parity_dump):
    """The probe config's head (ClsBatchNormNeck + LinearClsHead) is the official
    ``Sequential(BatchNorm1d(D, affine=False, eps=1e-6), Linear)``, converted from official keys
    (``head.0.running_*`` / ``head.1.*``), in eval and train mode, on the dump's official features."""
    from mmpretrain.models import ImageClassifier

    from mage_mm.converters import convert_official
    neck_cfg = dict(Config.fromfile(PROBE_BASE).model.neck)
    key = 'vit_global_pool'
    ref, sd = parity_dump[key], dict(parity_dump['state_dicts'][key])
    feats = ref['features']
    dim = feats.shape[1]
    # official probe: head = Sequential(BN, Linear); seeded non-trivial running statistics
    gen = torch.Generator().manual_seed(0)
    mean, var = torch.randn(dim, generator=gen) * 0.1, torch.rand(dim, generator=gen) + 0.5
    official_bn = torch.nn.BatchNorm1d(dim, affine=False, eps=1e-6)
    official_bn.running_mean.copy_(mean)
    official_bn.running_var.copy_(var)
    official_bn.num_batches_tracked.fill_(7)
    linear = torch.nn.Linear(dim, sd['head.weight'].shape[0])
    linear.load_state_dict({'weight': sd.pop('head.weight'), 'bias': sd.pop('head.bias')})
    official_head = torch.nn.Sequential(official_bn, linear)
    sd.update({f'head.0.{k}': v for k, v in official_bn.state_dict().items()})
    sd.update({f'head.1.{k}': v for k, v in linear.state_dict().items()})

    model = ImageClassifier(
        backbone=backbone_cfg(parity_dump, out_type='avg_featmap', tokenizer=tokenizer_cfg(parity_dump)),
        neck=dict(neck_cfg, input_features=dim),
        head=dict(type='LinearClsHead', num_classes=linear.out_features, in_channels=dim))
    converted, layout = convert_official(sd)
    assert layout == 'classifier'
    model.load_state_dict(converted, strict=True)
    model.eval()
    official_head.eval()
    with torch.no_grad():
        backbone_feats = model.extract_feat(parity_dump['images'], stage='backbone')
        torch.testing.assert_close(backbone_feats[-1], feats, atol=1e-5, rtol=0)
        ours = model.head(model.neck(backbone_feats))
        torch.testing.assert_close(ours, official_head(feats), atol=1e-4, rtol=0)
        if feats.shape[0] < 2:  # batch statistics need two samples (BatchNorm1d refuses one in train mode)
            return
        # train mode: both normalise with the batch statistics (and update the running ones alike)
        model.neck.train()
        official_head.train()
        torch.testing.assert_close(model.neck((feats, ))[0], official_bn(feats), atol=1e-5, rtol=0)
        torch.testing.assert_close(model.neck.bn.running_mean, official_bn.running_mean, atol=1e-6, rtol=0)
        torch.testing.assert_close(model.neck.bn.running_var, official_bn.running_var, atol=1e-6, rtol=0)
