# The demo's tiny MAGE (./mage_vit-tiny_1xb32-2000iters_fashion-mnist-32px.py) trained from a token cache: every
# training image tokenised once, in K = 8 fixed augmented views, by the same tokenizer (its Pretrained init below):
#   python tools/dataset_converters/pretokenize.py configs/mage/mage_vit-tiny_1xb32-2000iters_fashion-mnist-32px.py \
#       --out data/fashion_mnist_tokens_k8 --views 8
# Each pass over the data reads one of the 8 views of an image (mage_mm.datasets.TokenCacheDataset); the step skips
# the tokenizer (MAGE takes the cached ids and checks their tokenizer hash and grid against its own tokenizer).
# Recipe change against the image config: 8 fixed crops + flips per image instead of a fresh one every step.
_base_ = ['./mage_vit-tiny_1xb32-2000iters_fashion-mnist-32px.py']

token_cache = 'data/fashion_mnist_tokens_k8'
train_dataloader = dict(
    dataset=dict(_delete_=True, type='TokenCacheDataset', cache_dir=token_cache, expect_token_grid=(8, 8)))
# ids need no normalisation: the preprocessor only moves the batch to the device
model = dict(data_preprocessor=dict(_delete_=True, type='BaseDataPreprocessor'))
