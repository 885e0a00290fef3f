# ViT-B MAGE (./mage_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py) trained from a token cache of ImageNet-1k:
# each training image tokenised once by the official VQGAN in K = 16 views (RandomResizedCrop 0.2-1 + flip, drawn by
# the training pipeline itself with recorded seeds):
#   python tools/dataset_converters/pretokenize.py configs/mage/mage_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py \
#       --out data/imagenet_tokens_k16 --views 16 --device cuda
# (1.28 M images x 16 views x 256 uint16 ids = 10.5 GB of memory-mapped shards.) Training skips the tokenizer, about
# half of a step's FLOPs. Not the official recipe: 16 fixed views per image instead of a fresh crop every step
# (over 1600 epochs every view is seen ~100 times); see README "Performance" for when to prefer it.
_base_ = ['./mage_vit-base-p16_8xb512-amp-coslr-1600e_in1k-256px.py']

token_cache = 'data/imagenet_tokens_k16'
train_dataloader = dict(
    dataset=dict(_delete_=True, type='TokenCacheDataset', cache_dir=token_cache, expect_token_grid=(16, 16)))
model = dict(data_preprocessor=dict(_delete_=True, type='BaseDataPreprocessor'))
