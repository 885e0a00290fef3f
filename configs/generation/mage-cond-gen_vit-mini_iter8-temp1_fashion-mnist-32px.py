# The demo's class-conditional generator: the MAGECond of
# configs/mage/mage-cond_vit-mini_1xb32-600iters_fashion-mnist-32px.py (the "mini" MAGE, 10 Fashion-MNIST classes
# + null), 8 decoding steps at choice temperature 1 (the class accuracy of README "Class-conditional generation"
# was measured with these; the demo's unconditional generator,
# ./mage-gen_vit-mini_iter16-temp1-samp0.9-arccos_fashion-mnist-32px.py, decodes 16 steps at sampling
# temperature 0.9 with the arccos mask schedule);
# guidance per call (tools/generate.py --guidance).
_base_ = ['./mage-cond-gen_vit-tiny_iter8-temp6_fashion-mnist-32px.py', '../_base_/models/mage_vit-mini_encoder.py']

model = dict(
    backbone=dict(arch=dict(_base_.mage_vit_mini_arch)),
    neck=dict(in_channels=_base_.mage_vit_mini_arch.embed_dims, **_base_.mage_mini_decoder),
    head=dict(in_channels=_base_.mage_mini_decoder.embed_dims, embed_dims=_base_.mage_vit_mini_arch.embed_dims),
    num_iter=8,
    choice_temperature=1.0,
)
precision = 'auto'  # bf16 where the CPU/GPU runs it natively, else fp32
