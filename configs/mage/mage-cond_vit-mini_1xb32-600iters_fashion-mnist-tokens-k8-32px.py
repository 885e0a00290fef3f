# The demo's class-conditional MAGE (tools/demo_conditional.sh) trained from a labelled token cache:
# ./mage-cond_vit-mini_1xb32-600iters_fashion-mnist-32px.py (class embedding fed to the decoder, encoder frozen,
# label dropout 0.1) with every training image tokenised once in K = 8 views by the demo's tokenizer, with classes:
#   python tools/dataset_converters/pretokenize.py configs/mage/mage_vit-mini_1xb64-3000iters_fashion-mnist-32px.py \
#       --out data/fashion_mnist_tokens_k8 --views 8 --labels
# The step skips the tokenizer (MAGECond takes the cached ids and labels and checks the ids' tokenizer hash and grid
# against the tokenizer of init_checkpoint). Recipe change as for pretraining from the cache: 8 fixed crops + flips
# per image instead of a fresh one every step.
_base_ = ['./mage-cond_vit-mini_1xb32-600iters_fashion-mnist-32px.py']

token_cache = 'data/fashion_mnist_tokens_k8'
train_dataloader = dict(
    dataset=dict(_delete_=True, type='TokenCacheDataset', cache_dir=token_cache, expect_token_grid=(8, 8)))
# ids need no normalisation: the preprocessor only moves the batch to the device
model = dict(data_preprocessor=dict(_delete_=True, type='BaseDataPreprocessor'))
