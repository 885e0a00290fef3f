# The demo's class-conditional generator: the MAGECond of
# configs/mage/mage-cond_vit-tiny_1xb32-600iters_fashion-mnist-32px.py (10 Fashion-MNIST classes + null),
# 8 decoding steps as the demo's unconditional generation; guidance per call (tools/generate.py --guidance).
_base_ = ['./mage-cond-gen_vit-tiny_iter8-temp6_photo-crops-5cls-32px.py']
num_classes = 10
model = dict(neck=dict(num_classes=num_classes))
