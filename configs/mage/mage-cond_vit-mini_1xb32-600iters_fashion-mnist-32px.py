# The demo's class-conditional MAGE (tools/demo_conditional.sh): the demo's "mini" MAGE
# (./mage_vit-mini_1xb64-3000iters_fashion-mnist-tokens-k8-32px.py, its iter_3000.pth) fine-tuned on the labelled
# Fashion-MNIST training split with a class embedding fed to the decoder (10 classes + null, zero-initialised,
# added to every decoder token), label dropout p_uncond = 0.1, encoder frozen (the MAGE appendix recipe), as
# ./mage-cond_vit-tiny_1xb32-600iters_fashion-mnist-32px.py for the tiny model. Ours: 600 iterations x 32 images
# (images: the cache has no labels, so the tokenizer runs on every crop), AdamW lr 1e-3, 50 warm-up iterations,
# cosine, bf16 autocast (the tokenizer stays fp32).
_base_ = ['./mage_vit-mini_1xb64-3000iters_fashion-mnist-32px.py']

num_classes = 10
max_iters = 600
model = dict(
    type='MAGECond',
    num_classes=num_classes,
    p_uncond=0.1,
    train_encoder=False,
    init_checkpoint='work_dirs/demo/mage/iter_3000.pth',
    # the unconditional checkpoint holds the tokenizer too: no separate tokenizer file
    backbone=dict(tokenizer=dict(init_cfg=None)),
    neck=dict(num_classes=num_classes, class_injection='add'),
)
train_dataloader = dict(batch_size=32, dataset=dict(with_label=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=0.0),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
