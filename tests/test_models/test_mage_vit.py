import pytest
import torch

from mage_mm.models.backbones import MAGEViT

TINY = dict(embed_dims=32, num_layers=2, num_heads=4, feedforward_channels=64)


def tiny_vit(**kw):
    kw.setdefault('arch', TINY)
    kw.setdefault('codebook_size', 256)
    kw.setdefault('num_legacy_class_ids', 1)
    kw.setdefault('fake_class_id', 256)
    kw.setdefault('token_grid', 4)
    return MAGEViT(**kw).eval()


def test_presets():
    for arch, (d, n) in {'b': (768, 12), 'l': (1024, 24)}.items():
        with torch.device('meta'):
            vit = MAGEViT(arch=arch)
        assert vit.embed_dims == d and len(vit.blocks) == n
        assert vit.vocab_size == 2025 and vit.mask_id == 2024 and vit.fake_class_id == 1100
        assert vit.token_emb.position_embeddings.weight.shape[0] == 257
    with torch.device('meta'):
        vit = MAGEViT(arch='b')
    assert sum(p.numel() for p in vit.blocks.parameters()) == 85_054_464  # MAGE.md section b


def test_random_masking_counts_and_subset():
    vit = tiny_vit()
    ids = torch.randint(0, 256, (3, 16))
    out = vit(ids, mask=True)
    drop, all_ = out.token_drop_mask, out.token_all_mask
    assert drop.shape == all_.shape == (3, 17)
    assert not drop[:, 0].any() and not all_[:, 0].any()  # class slot never masked
    assert (drop <= all_).all()
    assert (drop.sum(1) == 8).all()  # ceil(16 * 0.5)
    n_mask = all_.sum(1)
    assert (n_mask == n_mask[0]).all() and 8 <= int(n_mask[0]) <= 16
    assert out.latent.shape == (3, 1 + 16 - 8, 32)


def test_explicit_masks_and_errors():
    vit = tiny_vit()
    ids = torch.randint(0, 256, (2, 16))
    drop = torch.zeros(2, 16, dtype=torch.bool)
    drop[:, :4] = True
    all_ = drop.clone()
    all_[:, 4:10] = True
    out = vit(ids, mask=(drop, all_))
    assert out.latent.shape == (2, 13, 32)
    bad = drop.clone()
    bad[0, 5] = True
    with pytest.raises(ValueError, match='same number of tokens'):
        vit(ids, mask=(bad, all_ | bad))
    with pytest.raises(ValueError, match='columns'):
        vit(ids, mask=(drop[:, :3], all_[:, :3]))


def test_plain_feature_out_types():
    ids = torch.randint(0, 256, (2, 16))
    assert tiny_vit(out_type='raw')(ids)[0].shape == (2, 17, 32)
    assert tiny_vit(out_type='cls_token')(ids)[0].shape == (2, 32)
    assert tiny_vit(out_type='avg_featmap')(ids)[0].shape == (2, 32)
    assert tiny_vit(out_type='featmap')(ids)[0].shape == (2, 32, 4, 4)
    outs = tiny_vit(out_type='cls_token', out_indices=(0, 1))(ids)
    assert len(outs) == 2
    assert not hasattr(tiny_vit(out_type='avg_featmap'), 'norm')  # no unused parameters
    with pytest.raises(ValueError, match='out_type'):
        tiny_vit(out_type='bogus')


def test_images_need_tokenizer_and_right_size():
    vit = tiny_vit(out_type='cls_token', tokenizer=dict(type='MAGEVQGAN', arch='tiny'))
    assert vit(torch.rand(2, 3, 16, 16))[0].shape == (2, 32)
    with pytest.raises(ValueError, match='position table'):
        vit(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match='no tokenizer'):
        tiny_vit()(torch.rand(2, 3, 16, 16))
    interp = tiny_vit(out_type='featmap', interpolate_pos=True, tokenizer=dict(type='MAGEVQGAN', arch='tiny'))
    assert interp(torch.rand(1, 3, 32, 48))[0].shape == (1, 32, 8, 12)


def test_frozen_stages_and_layer_depth():
    vit = tiny_vit(out_type='avg_featmap', frozen_stages=2)
    vit.train()
    assert all(not p.requires_grad for p in vit.parameters())
    assert vit.token_emb.training and vit.blocks[1].training  # official: frozen modules follow train()
    eval_frozen = tiny_vit(out_type='avg_featmap', frozen_stages=2, eval_frozen=True).train()
    assert not eval_frozen.token_emb.training and not eval_frozen.blocks[1].training
    partial = tiny_vit(frozen_stages=1)
    assert not any(p.requires_grad for p in partial.blocks[0].parameters())
    assert all(p.requires_grad for p in partial.blocks[1].parameters())
    assert vit.get_layer_depth('backbone.token_emb.word_embeddings.weight', 'backbone.') == (0, 4)
    assert vit.get_layer_depth('backbone.blocks.1.attn.qkv.weight', 'backbone.') == (2, 4)
    assert vit.get_layer_depth('backbone.fc_norm.weight', 'backbone.') == (3, 4)
    assert vit.get_layer_depth('head.fc.weight', 'backbone.') == (3, 4)


def test_init_weights_official_scheme():
    vit = tiny_vit()
    vit.init_weights()
    assert torch.all(vit.blocks[0].attn.qkv.bias == 0)
    std = vit.token_emb.word_embeddings.weight.std().item()
    assert 0.015 < std < 0.025
