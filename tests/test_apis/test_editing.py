"""Editing (inpaint / outpaint / uncrop): known tokens are kept exactly, through the API, the tool
and mmagic's inpainting inferencer. Tiny *random-weight* MAGE, real photo crops."""
import os.path as osp

import numpy as np
import pytest
import torch
from generation_utils import (
    TINY_GEN_CFG,
    real_photo_folder,
    save_random_tiny_checkpoint,  # noqa: F401
)
from PIL import Image
from tool_utils import load_tool

import mage_mm.models.generators.mage_generator  # noqa: F401
from mage_mm.apis import init_generator, load_rgb01
from mage_mm.models.generators import edit_mask, schedule_counts, token_mask_from_pixels


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('edit')
    ckpt = save_random_tiny_checkpoint(str(root / 'tiny_random.pth'))
    folder = real_photo_folder(str(root / 'photos'), 2, 32, seed=7)
    images = torch.cat([load_rgb01(osp.join(folder, f'img_{i:05d}.png')) for i in range(2)])
    return init_generator(TINY_GEN_CFG, ckpt), ckpt, images, folder


@pytest.mark.parametrize('kind', ['inpaint', 'outpaint', 'uncrop'])
def test_known_tokens_and_pixels_are_kept(setup, kind):
    model, _, images, _ = setup
    mask = edit_mask(kind, 32, 32, box=(6, 10, 21, 27), side='left', fraction=0.4)
    masks = torch.stack([mask, torch.zeros_like(mask)])  # image 1: nothing to regenerate
    out = model.edit(images, masks, seeds=[0, 1])
    expected_cells = token_mask_from_pixels(masks, model.token_grid)
    assert torch.equal(out.token_mask, expected_cells) and not out.token_mask[1].any()
    assert torch.equal(out.input_ids, model.tokenizer.encode(images))
    known = ~out.token_mask
    assert torch.equal(out.token_ids[known], out.input_ids[known])  # known tokens kept exactly
    assert (out.token_ids < model.backbone.codebook_size).all()
    assert out.token_mask[0].sum() > 0 and not torch.equal(out.token_ids[0], out.input_ids[0])
    hole = masks.bool().expand(-1, 3, -1, -1)
    assert torch.equal(out.images[~hole], images[~hole])  # pasted back
    assert torch.equal(out.images[hole], out.decoded[hole])
    assert torch.allclose(out.decoded[1:], model.tokens_to_images(out.input_ids[1:]))  # image 1 untouched tokens


def test_known_tokens_are_never_remasked_during_decoding(setup):
    model, _, images, _ = setup
    ids = model.tokenizer.encode(images[:1])
    unknown = token_mask_from_pixels(edit_mask('inpaint', 32, 32, box=(8, 8, 24, 24))[None], model.token_grid)
    init = ids.masked_fill(unknown, model.mask_id)
    out = model.decode_tokens(init, [3], editing=True, record_steps=True)
    for step in out.step_input_ids:
        assert torch.equal(step[~unknown], ids[~unknown])
    # editing schedules over the tokens to regenerate (16 here), not over all 64
    masked = (out.step_input_ids[:, 0] == model.mask_id).sum(-1).tolist()
    steps = model.decoding.num_iter
    assert masked == [16] + [k for _, k in schedule_counts(16, steps)][:-1]


def test_other_image_sizes_and_dilation(setup):
    model, _, images, _ = setup
    big = torch.nn.functional.interpolate(images[:1], size=(48, 48), mode='bilinear', align_corners=False)
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 20:22, 20:22] = 1
    out = model.edit(big, mask, seeds=[0], dilation=1)
    assert out.images.shape == (1, 3, 48, 48) and out.token_mask.sum() == 9
    keep = ~mask.bool().expand(-1, 3, -1, -1)
    assert torch.equal(out.images[keep], big[keep])
    with pytest.raises(ValueError, match='does not match'):
        model.edit(images, torch.zeros(1, 1, 32, 32))


def test_inpainting_inferencer(setup, tmp_path):
    """mmagic's own inpainting inferencer (LoadImageFromFile, LoadMask, GetMaskedImage, PackInputs)."""
    from mmagic.apis.inferencers import Inferencers
    model, ckpt, _, folder = setup
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 10:24] = 255
    Image.fromarray(mask).save(tmp_path / 'mask.png')
    image_path = osp.join(folder, 'img_00000.png')
    inferencer = Inferencers(task='inpainting', config=TINY_GEN_CFG, ckpt=ckpt, device='cpu')
    inferencer(img=image_path, mask=str(tmp_path / 'mask.png'), result_out_dir=str(tmp_path / 'out.png'))
    result = np.asarray(Image.open(tmp_path / 'out.png').convert('RGB'))
    original = np.asarray(Image.open(image_path).convert('RGB'))
    hole = mask > 0
    assert np.array_equal(result[~hole], original[~hole])  # known pixels, colours in the right order
    assert not np.array_equal(result[hole], original[hole])


@pytest.mark.integration
def test_edit_tool(setup, tmp_path):
    _, ckpt, _, folder = setup
    tool = load_tool('edit')
    image = osp.join(folder, 'img_00001.png')
    tool.main([TINY_GEN_CFG, ckpt, '--image', image, '--task', 'outpaint', '--box', '8', '8', '24', '24',
               '--out', str(tmp_path / 'out.png'), '--num-samples', '2', '--panel', str(tmp_path / 'panel.png'),
               '--scale', '2'])
    outs = [np.asarray(Image.open(tmp_path / f'out_{j}.png')) for j in range(2)]
    original = np.asarray(Image.open(image).convert('RGB'))
    assert np.array_equal(outs[0][8:24, 8:24], original[8:24, 8:24]) and not np.array_equal(outs[0], outs[1])
    assert np.asarray(Image.open(tmp_path / 'panel.png')).shape[1] > 5 * 32 * 2
    mask = np.zeros((32, 32), np.uint8)
    Image.fromarray(mask).save(tmp_path / 'empty.png')
    with pytest.raises(ValueError, match='empty'):
        tool.main([TINY_GEN_CFG, ckpt, '--image', image, '--mask', str(tmp_path / 'empty.png'),
                   '--out', str(tmp_path / 'x.png')])
