# Unconditional ImageNet 256x256 generation with MAGE ViT-B/16, official decoding settings
# (README of LTH14/mage: 20 iterations, choice temperature 6.0, cosine schedule, sampling from the
# full softmax). Official FID 11.1 / IS 81.2 on 50k samples.
#   python tools/generate.py THIS_CONFIG mage_vit-base_mmpretrain.pth --num-images 50000 --out-dir gen/
#   python tools/test.py THIS_CONFIG mage_vit-base_mmpretrain.pth   # MultiTestLoop + FID-50k
_base_ = [
    '../_base_/models/mage_vit-base-p16.py',
    './_base_/mage-gen_default_runtime.py',
    './_base_/imagenet-val-256px_fid.py',
]
model = dict(
    type='MAGEGenerator',
    data_preprocessor=dict(_delete_=True, type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                           output_channel_order='RGB'),
    backbone=dict(tokenizer=dict(init_cfg=None)),  # the MAGE checkpoint contains the tokenizer
    num_iter=20,
    choice_temperature=6.0,
    schedule='cosine',
    sampling_temperature=1.0,
    top_k=None,
    per_sample_mask_len=False,
    seed_mode='per_image',
)
