"""Analytic FLOP count of MAGE pretraining steps and generation, from a model config.

What is counted: every multiply-accumulate of a matrix product or convolution, as 2 FLOPs
(``2*M*K*N`` for an (M, K) @ (K, N) product, ``2*Cin*Cout*k*k*Hout*Wout`` for a convolution).
Not counted: biases, normalisation, activations, softmax, pooling, embedding look-ups, the loss,
the optimizer (all O(elements), well under 1 % of the total). This is the usual "model FLOPs"
convention of MFU figures; recomputation inside fused attention kernels is not counted either.

Per image, one pretraining step (N image tokens, ``n_drop = ceil(N * mask_ratio_min)`` dropped,
``Le = 1 + N - n_drop`` encoder tokens, ``Ld = 1 + N`` decoder positions):

* tokenizer (VQGAN encoder + quantiser), forward only (frozen, ``no_grad``): each convolution
  ``2*Cin*Cout*k*k*H*W`` at its resolution; the quantiser's distance product ``2*N*C*K``
  (C code width, K codes);
* encoder, ``depth`` blocks of width D, MLP width F: ``2*Le*D*3D`` (qkv) + ``2*Le*Le*D``
  (q·kᵀ) + ``2*Le*Le*D`` (attn·v) + ``2*Le*D*D`` (proj) + ``2*2*Le*D*F`` (fc1, fc2);
* decoder: ``2*Le*D*Dd`` (decoder_embed), then blocks of width Dd on Ld positions as above;
* head: ``2*Ld*Dd*D`` (fc) + ``2*Ld*D*V`` (logits against the tied V×D embedding table).

Training multiplies forward FLOPs by 3 (forward, gradient w.r.t. the input, gradient w.r.t. the
weight) for every trainable product; the head's logits product by 2 only, because the tied table
is used detached (official), so no weight gradient is computed there; the tokenizer by 1.

Generation per image: ``num_iter`` full network passes (nothing dropped: encoder and decoder on
1 + N tokens) plus one VQGAN decoder pass (convolutions as above) at the end.

Functions take plain dicts (an mmengine ``Config``'s ``model`` works) and resolve architecture
names through the registered classes' ``arch_zoo``.
"""
import math
from typing import Dict, Sequence, Tuple, Union


def matmul(m: int, k: int, n: int) -> int:
    """FLOPs of an (m, k) @ (k, n) product."""
    return 2 * m * k * n


def conv(cin: int, cout: int, kernel: int, h: int, w: int) -> int:
    """FLOPs of a stride-1 ``kernel``×``kernel`` convolution producing an h×w map."""
    return 2 * cin * cout * kernel * kernel * h * w


def _vqgan_arch(arch: Union[str, dict]) -> dict:
    if isinstance(arch, str):
        from mage_mm.models.tokenizers import MAGEVQGAN
        return dict(MAGEVQGAN.arch_zoo[arch])
    return dict(arch)


def _vit_arch(arch: Union[str, dict]) -> dict:
    if isinstance(arch, str):
        from mage_mm.models.backbones import MAGEViT
        return dict(MAGEViT.arch_zoo[arch.lower()])
    return dict(arch)


def _resblock(cin: int, cout: int, h: int, w: int) -> int:
    # conv1 cin→cout 3×3, conv2 cout→cout 3×3, and the official 1×1 out→out shortcut when widths differ
    flops = conv(cin, cout, 3, h, w) + conv(cout, cout, 3, h, w)
    if cin != cout:
        flops += conv(cout, cout, 1, h, w)
    return flops


def vqgan_encoder_flops(arch: Union[str, dict], height: int, width: int) -> int:
    """Forward FLOPs of the VQGAN encoder (conv_in … conv_out) on one image."""
    a = _vqgan_arch(arch)
    ch, mult, nrb, z = a['ch'], tuple(a['ch_mult']), a['num_res_blocks'], a['z_channels']
    h, w = height, width
    flops = conv(3, ch, 3, h, w)
    in_mult = (1, ) + mult
    for i, m in enumerate(mult):
        block_in, block_out = ch * in_mult[i], ch * m
        for j in range(nrb):
            flops += _resblock(block_in if j == 0 else block_out, block_out, h, w)
        if i != len(mult) - 1:
            h, w = h // 2, w // 2
    c = ch * mult[-1]
    flops += 2 * _resblock(c, c, h, w)  # mid
    flops += conv(c, z, 1, h, w)
    return flops


def quantizer_flops(arch: Union[str, dict], num_tokens: int) -> int:
    """Nearest-code search: the (N, C) @ (C, K) distance product on one image."""
    a = _vqgan_arch(arch)
    return matmul(num_tokens, a['z_channels'], a['num_codes'])


def vqgan_decoder_flops(arch: Union[str, dict], height: int, width: int) -> int:
    """Forward FLOPs of the VQGAN decoder producing one ``height``×``width`` image."""
    a = _vqgan_arch(arch)
    ch, mult, nrb, z = a['ch'], tuple(a['ch_mult']), a['num_res_blocks'], a['z_channels']
    f = 2**(len(mult) - 1)
    h, w = height // f, width // f
    block_in = ch * mult[-1]
    flops = conv(z, block_in, 3, h, w) + 2 * _resblock(block_in, block_in, h, w)
    for i in reversed(range(len(mult))):
        block_out = ch * mult[i]
        for _ in range(nrb):
            flops += _resblock(block_in, block_out, h, w)
            block_in = block_out
        if i != 0:
            h, w = h * 2, w * 2
            flops += conv(block_in, block_in, 3, h, w)  # nearest ×2 then conv
    flops += conv(block_in, 3, 3, h, w)
    return flops


def transformer_flops(tokens: int, dim: int, ffn: int, depth: int) -> int:
    """Forward FLOPs of ``depth`` pre-norm blocks on ``tokens`` positions (one image)."""
    per_block = (matmul(tokens, dim, 3 * dim) + matmul(tokens, dim, tokens) + matmul(tokens, tokens, dim)
                 + matmul(tokens, dim, dim) + matmul(tokens, dim, ffn) + matmul(tokens, ffn, dim))
    return depth * per_block


def tokenizer_config(model: dict) -> dict:
    """The ``MAGEVQGAN`` config of a MAGE model config: ``target_generator`` or ``backbone.tokenizer``."""
    tok = model.get('target_generator') or model['backbone'].get('tokenizer')
    if not tok:
        raise KeyError('the model config has neither target_generator nor backbone.tokenizer (the VQGAN)')
    return tok


def _sizes(model: dict, image_size: Tuple[int, int]) -> dict:
    bb, neck, head, tok = model['backbone'], model['neck'], model['head'], tokenizer_config(model)
    tok_arch = _vqgan_arch(tok.get('arch', 'official'))
    vit = _vit_arch(bb.get('arch', 'b'))
    f = 2**(len(tok_arch['ch_mult']) - 1)
    n = (image_size[0] // f) * (image_size[1] // f)
    dec_dim = neck.get('embed_dims', 768)
    return dict(tok_arch=tok_arch, num_tokens=n, dim=vit['embed_dims'], ffn=vit['feedforward_channels'],
                depth=vit['num_layers'], mask_ratio_min=bb.get('mask_ratio_min', 0.5), dec_dim=dec_dim,
                dec_ffn=int(dec_dim * neck.get('mlp_ratio', 4.0)), dec_depth=neck.get('num_layers', 8),
                vocab=head.get('vocab_size', 2025), detach=head.get('detach_embedding', True))


def pretrain_flops(model: dict, image_size: Union[int, Sequence[int]] = 256) -> Dict[str, int]:
    """Training FLOPs of one pretraining step per image, by part.

    Args:
        model (dict): A ``MAGE`` model config (``backbone``, ``neck``, ``head`` and the VQGAN as
            ``target_generator`` or ``backbone.tokenizer``).
        image_size (int | Sequence[int]): Input size. Defaults to 256.

    Returns:
        dict: ``tokenizer``, ``encoder``, ``decoder``, ``head``, ``total`` (training FLOPs: forward
        and backward as in the module docstring) and ``forward`` (forward-only FLOPs of all parts).
    """
    hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    s = _sizes(model, hw)
    n = s['num_tokens']
    n_drop = int(math.ceil(n * s['mask_ratio_min']))
    le, ld = 1 + n - n_drop, 1 + n
    tok = vqgan_encoder_flops(s['tok_arch'], *hw) + quantizer_flops(s['tok_arch'], n)
    enc = transformer_flops(le, s['dim'], s['ffn'], s['depth'])
    dec = matmul(le, s['dim'], s['dec_dim']) + transformer_flops(ld, s['dec_dim'], s['dec_ffn'], s['dec_depth'])
    head_fc, head_logits = matmul(ld, s['dec_dim'], s['dim']), matmul(ld, s['dim'], s['vocab'])
    parts = dict(tokenizer=tok, encoder=3 * enc, decoder=3 * dec,
                 head=3 * head_fc + (2 if s['detach'] else 3) * head_logits)
    parts['total'] = sum(parts.values())
    parts['forward'] = tok + enc + dec + head_fc + head_logits
    return parts


def generation_flops(model: dict, image_size: Union[int, Sequence[int]] = 256, num_iter: int = 20) -> Dict[str, int]:
    """Forward FLOPs of generating one image: ``num_iter`` network passes + one VQGAN decode.

    Returns:
        dict: ``network`` (all iterations), ``vqgan_decoder``, ``total``.
    """
    hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    s = _sizes(model, hw)
    ld = 1 + s['num_tokens']
    one = (transformer_flops(ld, s['dim'], s['ffn'], s['depth']) + matmul(ld, s['dim'], s['dec_dim'])
           + transformer_flops(ld, s['dec_dim'], s['dec_ffn'], s['dec_depth']) + matmul(ld, s['dec_dim'], s['dim'])
           + matmul(ld, s['dim'], s['vocab']))
    out = dict(network=num_iter * one, vqgan_decoder=vqgan_decoder_flops(s['tok_arch'], *hw))
    out['total'] = out['network'] + out['vqgan_decoder']
    return out
