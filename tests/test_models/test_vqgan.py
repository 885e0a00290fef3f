import pytest
import torch

from mage_mm.models.tokenizers import MAGEVQGAN


def test_official_arch_matches_reference_sizes():
    tok = MAGEVQGAN(arch='official')
    enc = sum(p.numel() for p in tok.encoder.parameters())
    dec = sum(p.numel() for p in tok.decoder.parameters())
    # parameter counts of the released tokenizer (MAGE.md section a)
    assert enc == 23_775_104 and dec == 30_478_339
    assert tok.quantize.embedding.weight.shape == (1024, 256)
    assert len(tok.state_dict()) == 168
    assert tok.downsample_factor == 16


def test_encode_decode_shapes_and_range():
    tok = MAGEVQGAN(arch='tiny')
    x = torch.rand(2, 3, 32, 48)
    ids = tok.encode(x)
    assert ids.shape == (2, 8 * 12) and ids.dtype == torch.int64
    assert 0 <= int(ids.min()) and int(ids.max()) < tok.num_codes
    img = tok.decode(ids, grid=(8, 12))
    assert img.shape == (2, 3, 32, 48)
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    recon, vq_loss, ids2 = tok(x)
    assert recon.shape == x.shape and torch.equal(ids, ids2) and vq_loss.ndim == 0


def test_frozen_by_default_and_stays_in_eval():
    tok = MAGEVQGAN(arch='tiny')
    assert all(not p.requires_grad for p in tok.parameters())
    tok.train()
    assert not tok.training
    trainable = MAGEVQGAN(arch='tiny', frozen=False)
    trainable.train()
    assert trainable.training and all(p.requires_grad for p in trainable.parameters())


def test_bad_inputs_give_clear_errors():
    tok = MAGEVQGAN(arch='tiny')
    with pytest.raises(ValueError, match='multiples of its downsampling factor 4; got 30x32'):
        tok.encode(torch.rand(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        tok.encode(torch.rand(1, 1, 32, 32))
    with pytest.raises(TypeError, match='float images'):
        tok.encode(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match='token ids must lie in'):
        tok.decode(torch.full((1, 64), 999))
    with pytest.raises(KeyError, match='unknown MAGEVQGAN arch'):
        MAGEVQGAN(arch='huge')
    with pytest.raises(KeyError, match='missing'):
        MAGEVQGAN(arch=dict(ch=32))


def test_skip_conv_quirk_ignores_block_input():
    """Width-changing res blocks return h + conv1x1(h): the input reaches the output only through h."""
    from mage_mm.models.tokenizers.vqgan import ResBlock
    block = ResBlock(32, 64).eval()
    x = torch.randn(1, 32, 8, 8)
    h = block.conv2(torch.nn.functional.silu(block.norm2(block.conv1(torch.nn.functional.silu(block.norm1(x))))))
    torch.testing.assert_close(block(x), h + block.nin_shortcut(h))
    assert block.nin_shortcut.weight.shape == (64, 64, 1, 1)
