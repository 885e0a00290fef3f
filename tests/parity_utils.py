"""Build mage_mm models from a parity dump's ``config`` (no constants from here)."""
from mage_mm.converters import convert_official
from mage_mm.models.algorithms import MAGE
from mage_mm.models.tokenizers import MAGEVQGAN


def tokenizer_cfg(dump) -> dict:
    v = dump['config']['vqgan']
    dd = v['ddconfig']
    assert v['embed_dim'] == dd['z_channels'], 'mage_mm assumes code dim == z_channels (no quant_conv)'
    return dict(type='MAGEVQGAN', arch=dict(ch=dd['ch'], ch_mult=tuple(dd['ch_mult']),
                                            num_res_blocks=dd['num_res_blocks'], z_channels=dd['z_channels'],
                                            num_codes=v['n_embed']))


def token_grid(dump) -> int:
    dd = dump['config']['vqgan']['ddconfig']
    return dd['resolution'] // 2**(len(dd['ch_mult']) - 1)


def backbone_cfg(dump, **overrides) -> dict:
    m, meta = dump['config']['mage'], dump['meta']
    cfg = dict(type='MAGEViT',
               arch=dict(embed_dims=m['embed_dim'], num_layers=m['depth'], num_heads=m['num_heads'],
                         feedforward_channels=int(m['embed_dim'] * m['mlp_ratio'])),
               codebook_size=meta['codebook_size'],
               num_legacy_class_ids=meta['vocab_size'] - meta['codebook_size'] - 1,
               fake_class_id=meta['fake_class_label'], token_grid=token_grid(dump),
               mask_ratio_min=m['mask_ratio_min'], mask_ratio_max=m['mask_ratio_max'],
               mask_ratio_mu=m['mask_ratio_mu'], mask_ratio_std=m['mask_ratio_std'])
    cfg.update(overrides)
    return cfg


def build_tokenizer(dump) -> MAGEVQGAN:
    from mmpretrain.registry import MODELS
    tok = MODELS.build(tokenizer_cfg(dump))
    sd, layout = convert_official(dump['state_dicts']['vqgan'])
    assert layout == 'vqgan'
    tok.load_state_dict(sd, strict=True)
    return tok.eval()


def build_mage(dump) -> MAGE:
    m, meta = dump['config']['mage'], dump['meta']
    n = token_grid(dump)**2
    model = MAGE(
        backbone=backbone_cfg(dump, tokenizer=tokenizer_cfg(dump)),
        neck=dict(type='MAGEPretrainDecoder', num_tokens=n, in_channels=m['embed_dim'],
                  embed_dims=m['decoder_embed_dim'], num_layers=m['decoder_depth'],
                  num_heads=m['decoder_num_heads'], mlp_ratio=m['mlp_ratio']),
        head=dict(type='MAGEPretrainHead', in_channels=m['decoder_embed_dim'], embed_dims=m['embed_dim'],
                  vocab_size=meta['vocab_size'], codebook_size=meta['codebook_size']))
    sd, layout = convert_official(dump['state_dicts']['mage'])
    assert layout == 'pretrain'
    model.load_state_dict(sd, strict=True)
    return model.eval()


def build_classifier(dump, key: str):
    """mmpretrain ImageClassifier equivalent of the official linear-probe/fine-tune model."""
    from mmpretrain.models import ImageClassifier
    global_pool = dump[key]['global_pool']
    num_classes = dump['config']['vit_num_classes']
    m = dump['config']['mage']
    model = ImageClassifier(
        backbone=backbone_cfg(dump, out_type='avg_featmap' if global_pool else 'cls_token',
                              tokenizer=tokenizer_cfg(dump)),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=m['embed_dim']),
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.]))
    sd, layout = convert_official(dump['state_dicts'][key])
    assert layout == 'classifier'
    model.load_state_dict(sd, strict=True)
    return model.eval()
