"""Parity with the official MAGE code (dump path from MAGE_PARITY_DUMP).

Every size, ratio and setting is read from the dump, so dumps made with other
seeds, batch sizes and mask ratios pass unchanged. Tolerances follow the
dump's README: token ids and masks exact, tensors to 1e-5 / logits to 1e-4.
"""
import torch

from parity_utils import build_classifier, build_mage, build_tokenizer


def test_tokenizer_parity(parity_dump):
    tok = build_tokenizer(parity_dump)
    ref = parity_dump['vqgan']
    images = parity_dump['images']
    with torch.no_grad():
        z = tok.encode_latent(images)
        torch.testing.assert_close(z, ref['encoder_out'], atol=1e-5, rtol=1e-5)
        z_q, vq_loss, ids = tok.quantize(z)
        assert torch.equal(ids, ref['token_ids'])
        assert torch.equal(tok.encode(images), ref['token_ids'])
        torch.testing.assert_close(z_q, ref['z_q'], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(vq_loss, ref['vq_loss'], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(tok.ids_to_latent(ref['token_ids']), ref['z_from_ids'], atol=1e-5, rtol=1e-5)
        decoded = tok.decode(ref['token_ids'], clamp=False)
        torch.testing.assert_close(decoded, ref['decoded_from_ids'], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tok(images)[0], ref['reconstruction'], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tok.decode(ref['token_ids']), ref['decoded_from_ids'].clamp(0, 1), atol=1e-5, rtol=1e-5)


def test_pretrain_forward_parity(parity_dump):
    model = build_mage(parity_dump)
    ref = parity_dump['mage_train']
    ids = model.tokenize(parity_dump['images'])
    assert torch.equal(ids, ref['gt_token_ids'])
    drop, all_ = ref['token_drop_mask'].bool(), ref['token_all_mask'].bool()
    # the dump's masks obey the official counts for its ratio
    n = ids.shape[1]
    assert int(drop[0].sum()) == ref['num_dropped_per_sample'] and int(all_[0].sum()) == ref['num_masked_per_sample']
    with torch.no_grad():
        out = model.backbone(ids, mask=(drop, all_))
        torch.testing.assert_close(out.latent, ref['encoder_out'], atol=1e-5, rtol=1e-5)
        input_ids = model.backbone._with_class_slot(ids).masked_fill(out.token_all_mask, model.backbone.mask_id)
        assert torch.equal(input_ids, ref['encoder_input_ids'])
        logits = model.predict_logits(ids, drop, all_)
        torch.testing.assert_close(logits, ref['logits'], atol=1e-4, rtol=1e-4)
        per_token = model.head.per_token_loss(logits, ids)
        torch.testing.assert_close(per_token, ref['per_token_loss'], atol=1e-5, rtol=1e-5)
        feats = model.neck(out.latent, out.token_drop_mask, out.token_all_mask)
        loss = model.head.loss(feats, ids, out.token_all_mask, model.backbone.word_embeddings)
        torch.testing.assert_close(loss, ref['loss'], atol=1e-5, rtol=1e-5)
    assert n == model.backbone.num_tokens


def test_generation_step_parity(parity_dump):
    """One decoding iteration: nothing dropped, the encoder sees all tokens."""
    model = build_mage(parity_dump)
    ref = parity_dump['mage_generation_step']
    input_ids = ref['input_ids']
    bb = model.backbone
    all_ = ref['token_all_mask'].bool()
    assert torch.equal(all_, input_ids == bb.mask_id)
    ids = input_ids[:, 1:]
    with torch.no_grad():
        x = bb.token_emb(input_ids)
        torch.testing.assert_close(x, ref['token_emb_out'], atol=1e-5, rtol=1e-5)
        for i, block in enumerate(bb.blocks):
            x = block(x)
            torch.testing.assert_close(x, ref['encoder_block_outs'][i], atol=1e-5, rtol=1e-5)
        out = bb(ids, mask=(torch.zeros_like(all_), all_))
        torch.testing.assert_close(out.latent, ref['encoder_out'], atol=1e-5, rtol=1e-5)
        logits = model.predict_logits(ids, torch.zeros_like(all_), all_)
        torch.testing.assert_close(logits, ref['logits'], atol=1e-4, rtol=1e-4)


def test_classifier_parity(parity_dump):
    for key in ('vit_global_pool', 'vit_cls_token'):
        model = build_classifier(parity_dump, key)
        ref = parity_dump[key]
        data = model.data_preprocessor(dict(inputs=list(parity_dump['images'] * 255.0)))
        with torch.no_grad():
            feats = model.extract_feat(parity_dump['images'])[-1]
            torch.testing.assert_close(feats, ref['features'], atol=1e-5, rtol=1e-5)
            logits = model.head(model.extract_feat(data['inputs']))
            torch.testing.assert_close(logits, ref['logits'], atol=1e-4, rtol=1e-4)
