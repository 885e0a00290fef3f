# Tiny class-conditional MAGE generator (MAGECondGenerator) for CPU tests: the model of
# configs/mage/mage-cond_vit-tiny_1xb8-20iters_photo-crops-5cls-32px.py (a MAGECond checkpoint of that config
# loads here as is: 5 classes + the null class), 8 decoding steps, classifier-free guidance off by default
# (guidance=1.0: the conditional pass alone). Per call: tools/generate.py --classes ... --guidance S.
# The test-loop FID samples classes uniformly at random (mmagic's conditional-GAN convention).
_base_ = ['./mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py']
custom_imports = dict(imports=['mage_mm.compat', 'mage_mm.register', 'mage_mm.models.generators.mage_generator',
                               'mage_mm.models.generators.mage_cond_generator', 'mage_mm.evaluation.metrics'],
                      allow_failed_imports=False)

num_classes = 5
model = dict(
    type='MAGECondGenerator',
    neck=dict(num_classes=num_classes, class_injection='add'),
    guidance=1.0,
    guidance_schedule='constant',
)
