"""MAGEPretrainDecoder (class-slot padding) and MAGEPretrainHead (tied MLM layer, label-smoothed loss).

Each output is compared with a from-scratch computation written with loops and explicit formulas, not with the
modules' own vectorised code, so a wrong scatter, a padding with the wrong feature, a missing position
embedding, a loss over the wrong positions or columns, or a gradient into the tied table would fail here.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from mage_mm.models.heads import MAGEPretrainHead
from mage_mm.models.necks import MAGEPretrainDecoder

B, N, D_ENC, D_DEC = 2, 6, 8, 12


def _decoder() -> MAGEPretrainDecoder:
    torch.manual_seed(0)
    dec = MAGEPretrainDecoder(num_tokens=N, in_channels=D_ENC, embed_dims=D_DEC, num_layers=2, num_heads=2,
                              drop_rate=0.0, attn_drop_rate=0.0)
    dec.init_weights()
    return dec.eval()


def _masks():
    # position 0 is the class slot (never dropped or masked); per image: some dropped, some kept-but-masked
    drop = torch.zeros(B, 1 + N, dtype=torch.bool)
    masked = torch.zeros(B, 1 + N, dtype=torch.bool)
    drop[0, [2, 5]] = True
    masked[0, [2, 3, 5]] = True  # 3 is kept by the encoder but masked
    drop[1, [1, 4]] = True
    masked[1, [1, 4, 6]] = True
    return drop, masked


def _reference(dec: MAGEPretrainDecoder, latent, drop, masked) -> torch.Tensor:
    x = dec.decoder_embed(latent)  # (B, 1 + kept, D)
    rows = []
    for b in range(B):
        kept = [p for p in range(1 + N) if not drop[b, p]]
        assert len(kept) == latent.shape[1]
        canvas = []
        for p in range(1 + N):
            if masked[b, p] or drop[b, p]:
                canvas.append(x[b, 0])  # every masked position carries the class-slot feature
            else:
                canvas.append(x[b, kept.index(p)])
        rows.append(torch.stack(canvas))
    h = torch.stack(rows) + dec.decoder_pos_embed
    for block in dec.decoder_blocks:
        h = block(h)
    return dec.decoder_norm(h)


@torch.no_grad()
def test_decoder_pads_with_the_class_slot_feature():
    dec = _decoder()
    drop, masked = _masks()
    torch.manual_seed(1)
    latent = torch.randn(B, 1 + N - 2, D_ENC)
    out = dec(latent, drop, masked)
    assert out.shape == (B, 1 + N, D_DEC)
    torch.testing.assert_close(out, _reference(dec, latent, drop, masked), atol=1e-6, rtol=0)


@torch.no_grad()
def test_decoder_ignores_the_encoder_output_at_masked_positions_only():
    dec = _decoder()
    drop, masked = _masks()
    torch.manual_seed(2)
    latent = torch.randn(B, 1 + N - 2, D_ENC)
    out = dec(latent, drop, masked)
    # image 0 keeps positions [0, 1, 3, 4, 6] -> latent rows 0..4; position 3 (row 2) is masked
    hidden = latent.clone()
    hidden[0, 2] += 10.0
    torch.testing.assert_close(dec(hidden, drop, masked), out, atol=0, rtol=0)
    visible = latent.clone()
    visible[0, 1] += 10.0  # position 1 is visible
    assert not torch.allclose(dec(visible, drop, masked)[0], out[0])
    # the learned positions are part of the decoder input
    dec.decoder_pos_embed.add_(1.0)
    assert not torch.allclose(dec(latent, drop, masked), out)


def test_decoder_errors_name_the_problem():
    dec = _decoder()
    drop, masked = _masks()
    latent = torch.randn(B, 1 + N - 2, D_ENC)
    with pytest.raises(ValueError, match=r'masks have 5 positions but the decoder was built for 7'):
        dec(latent, drop[:, :5], masked[:, :5])
    with pytest.raises(ValueError, match='unconditional'):
        dec(latent, drop, masked, labels=torch.zeros(B, dtype=torch.long))


def _head(detach: bool = True, smoothing: float = 0.1) -> MAGEPretrainHead:
    torch.manual_seed(3)
    head = MAGEPretrainHead(in_channels=D_DEC, embed_dims=D_ENC, vocab_size=11, codebook_size=7,
                            label_smoothing=smoothing, detach_embedding=detach)
    head.init_weights()
    with torch.no_grad():
        head.bias.normal_()
    return head


def test_head_logits_are_tied_to_the_embedding_table():
    head = _head()
    torch.manual_seed(4)
    x, table = torch.randn(B, 1 + N, D_DEC), torch.randn(11, D_ENC)
    ref = torch.empty(B, 1 + N, 11)
    for b in range(B):
        for p in range(1 + N):
            h = head.fc.weight @ x[b, p] + head.fc.bias
            h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))  # exact GELU
            h = (h - h.mean()) / torch.sqrt(h.var(unbiased=False) + head.ln.eps) * head.ln.weight + head.ln.bias
            ref[b, p] = table @ h + head.bias[0, 0]
    torch.testing.assert_close(head(x, table), ref, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match='embedding table has 10 rows; head expects 11'):
        head(x, table[:10])


@pytest.mark.parametrize('detach', [True, False])
def test_head_gradient_reaches_the_table_only_when_not_detached(detach):
    head = _head(detach=detach)
    x = torch.randn(B, 1 + N, D_DEC)
    table = torch.randn(11, D_ENC, requires_grad=True)
    head(x, table).sum().backward()
    assert (table.grad is None) == detach  # official: detached, no gradient from the output side
    assert head.fc.weight.grad is not None and head.bias.grad.abs().sum() > 0


def test_head_loss_is_label_smoothed_ce_over_masked_codes():
    eps = 0.1
    head = _head(smoothing=eps)
    torch.manual_seed(5)
    x, table = torch.randn(B, 1 + N, D_DEC), torch.randn(11, D_ENC)
    target = torch.randint(0, 7, (B, N))
    _, masked = _masks()
    loss = head.loss(x, target, masked, table)
    logits = head(x, table).detach()
    terms = []
    for b in range(B):
        for p in range(1, 1 + N):  # image positions; the class slot has no target
            if not masked[b, p]:
                continue
            logp = F.log_softmax(logits[b, p, :7], dim=0)  # only the codebook columns compete
            terms.append((1 - eps) * -logp[target[b, p - 1]] + eps * -logp.mean())
    torch.testing.assert_close(loss, torch.stack(terms).mean(), atol=1e-6, rtol=0)
    # targets at visible positions do not matter
    other = target.clone()
    other[~masked[:, 1:]] = (other[~masked[:, 1:]] + 1) % 7
    torch.testing.assert_close(head.loss(x, other, masked, table), loss, atol=0, rtol=0)
    # nothing masked: zero, not a division by zero
    assert head.loss(x, target, torch.zeros_like(masked), table).item() == 0.0
