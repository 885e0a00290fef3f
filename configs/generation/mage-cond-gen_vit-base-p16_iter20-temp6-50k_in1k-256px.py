# Class-conditional ImageNet 256x256 generation with a MAGECond ViT-B checkpoint
# (configs/mage/mage-cond_vit-base-p16_8xb256-amp-coslr-100e_in1k-256px.py): the official unconditional decoding
# settings (20 iterations, choice temperature 6.0, cosine schedule, full softmax) plus classifier-free guidance.
# Ours (the paper gives no class-conditional sampling settings): guidance off by default (guidance=1.0, the
# conditional pass alone); choose the scale with --guidance (e.g. sweep 1, 2, 3, 4 and score each on
# training-split data, never on the evaluation split), constant or a linear ramp (--guidance-schedule).
# Balanced FID-50k (50 per class) with the offline TF-Inception vs the ImageNet-val 256 statistics:
#   python tools/generate.py THIS_CONFIG mage-cond_vit-base.pth --classes all --num-per-class 50 \
#       --guidance 2 --out-dir gen/
#   python tools/analysis_tools/compute_fid.py gen/ data/fid_stats/imagenet-val_resize256-crop256_tf-inception.npz
# (tools/test.py THIS_CONFIG CKPT runs mmagic's MultiTestLoop FID with uniformly random classes instead.)
_base_ = ['./mage-gen_vit-base-p16_iter20-temp6-50k_in1k-256px.py']
custom_imports = dict(imports=['mage_mm.compat', 'mage_mm.register', 'mage_mm.models.generators.mage_generator',
                               'mage_mm.models.generators.mage_cond_generator', 'mage_mm.evaluation.metrics'],
                      allow_failed_imports=False)
num_classes = 1000
model = dict(
    type='MAGECondGenerator',
    neck=dict(num_classes=num_classes, class_injection='add'),
    guidance=1.0,
    guidance_schedule='constant',
)
