# Tiny class-conditional MAGE (MAGECond) for CPU tests: the tiny MAGE of
# ./mage_vit-tiny_1xb8-20iters_photo-crops-32px.py fine-tuned with a class embedding fed to the decoder
# (zero-initialised, 5 classes + 1 null class), label dropout p_uncond = 0.1, encoder frozen (MAGE appendix).
# Data ("photo-crops-5cls"): an ImageFolder tree data_root/train/<class>/<image> of 32 px crops of 5 real
# photos, labelled by photo (tests make one with mage_mm.datasets.photos; any class-folder tree works).
# `init_checkpoint`: an unconditional MAGE of the same architecture (e.g. the tiny pretraining config's
# iter_20.pth); loaded strictly, only neck.class_embed.weight may be missing. None = random init.
_base_ = ['./mage_vit-tiny_1xb8-20iters_photo-crops-32px.py']

num_classes = 5
model = dict(
    type='MAGECond',
    num_classes=num_classes,
    p_uncond=0.1,  # ours (MUSE / RCG use 0.1); the paper does not say
    train_encoder=False,  # paper: the pretrained encoder is frozen
    init_checkpoint=None,
    neck=dict(num_classes=num_classes, class_injection='add'),  # ours: added to every decoder token
)

data_root = 'data/tiny_labelled/'
train_dataloader = dict(dataset=dict(data_root=data_root, data_prefix='train', with_label=True))
