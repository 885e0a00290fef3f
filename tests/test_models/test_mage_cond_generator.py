"""Class-conditional sampling: MAGECondGenerator, classifier-free guidance, mmagic's conditional inferencer."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mage_mm.register  # noqa: F401
from mage_mm.apis import init_generator
from mage_mm.models.generators import DecodingOptions, build_sampler, iterative_decode
from mage_mm.models.generators.guidance import GuidedLogits, check_guidance, guidance_at

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
UNCOND_CFG = osp.join(ROOT, 'configs', 'mage', 'mage_vit-tiny_1xb8-20iters_photo-crops-32px.py')
COND_CFG = osp.join(ROOT, 'configs', 'mage', 'mage-cond_vit-tiny_1xb8-20iters_photo-crops-5cls-32px.py')
GEN_CFG = osp.join(ROOT, 'configs', 'generation', 'mage-gen_vit-tiny_iter8-temp6_photo-crops-32px.py')
COND_GEN_CFG = osp.join(ROOT, 'configs', 'generation', 'mage-cond-gen_vit-tiny_iter8-temp6_photo-crops-5cls-32px.py')


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Random tiny unconditional MAGE; the MAGECond made from it (fresh: zero class embedding); a 'trained' one."""
    from mmpretrain.registry import MODELS
    root = tmp_path_factory.mktemp('cond_gen')
    torch.manual_seed(0)
    uncond = MODELS.build(dict(Config.fromfile(UNCOND_CFG).model, _scope_='mmpretrain'))
    uncond.init_weights()
    paths = dict(uncond=str(root / 'uncond.pth'), fresh=str(root / 'fresh.pth'), trained=str(root / 'trained.pth'))
    torch.save(dict(state_dict=uncond.state_dict()), paths['uncond'])
    cond = MODELS.build(dict(Config.fromfile(COND_CFG).model, _scope_='mmpretrain', init_checkpoint=paths['uncond']))
    cond.init_weights()
    torch.save(dict(state_dict=cond.state_dict()), paths['fresh'])
    with torch.no_grad():
        cond.neck.class_embed.weight.normal_(std=1.0)  # stands in for a trained embedding: classes now matter
    torch.save(dict(state_dict=cond.state_dict()), paths['trained'])
    return paths


@pytest.fixture(scope='module')
def trained(checkpoints):
    return init_generator(COND_GEN_CFG, checkpoints['trained'])


SEEDS = [3, 1, 4, 1, 5]
LABELS = [0, 1, 2, 3, 4]


def test_fresh_conditional_generator_decodes_the_unconditional_tokens(checkpoints):
    uncond = init_generator(GEN_CFG, checkpoints['uncond'])
    fresh = init_generator(COND_GEN_CFG, checkpoints['fresh'])
    ref = uncond.generate_tokens(SEEDS)
    for guidance, schedule in ((1.0, 'constant'), (3.0, 'constant'), (2.0, 'linear'), (0.0, 'constant')):
        out = fresh.generate_tokens(SEEDS, labels=LABELS, guidance=guidance, guidance_schedule=schedule)
        assert torch.equal(out, ref), (guidance, schedule)


def test_guidance_one_is_the_conditional_pass_alone(trained):
    labels = torch.tensor(LABELS)
    calls = []

    def cond_only(ids):
        calls.append(len(ids))
        return trained._cond_logits(ids, labels)

    opts = trained.decoding_options()
    init = torch.full((len(SEEDS), 64), trained.mask_id)
    with torch.no_grad():
        ref = iterative_decode(cond_only, init, mask_id=trained.mask_id, codebook_size=256,
                               sampler=build_sampler(SEEDS, 'per_image'), options=opts).token_ids
    for schedule in ('constant', 'linear'):
        out = trained.generate_tokens(SEEDS, labels=LABELS, guidance=1.0, guidance_schedule=schedule)
        assert torch.equal(out, ref)
    assert calls == [len(SEEDS)] * opts.num_iter
    # s = 0 is the null-class pass alone (the decoder's labels=None)
    null = trained.decode_tokens(init, SEEDS, labels=None).token_ids
    assert torch.equal(trained.generate_tokens(SEEDS, labels=LABELS, guidance=0.0), null)
    # guidance changes the images of a trained model, and the class does too
    assert not torch.equal(trained.generate_tokens(SEEDS, labels=LABELS, guidance=3.0), ref)
    assert not torch.equal(trained.generate_tokens(SEEDS, labels=[4, 3, 2, 1, 0]), ref)


def test_guided_logits_batch_both_passes_and_follow_the_formula():
    seen = []

    def net(ids, labels):
        seen.append(labels.tolist())
        return ids.float().unsqueeze(-1) * 0 + labels.float().view(-1, 1, 1)  # logits = the label id

    g = GuidedLogits(net, torch.tensor([1, 2]), null_class=5, scale=3.0)
    out = g(torch.zeros(2, 4, dtype=torch.long))
    assert seen == [[1, 2, 5, 5]]  # one call, conditional rows then null rows
    assert torch.allclose(out, torch.tensor([5 + 3 * (1 - 5), 5 + 3 * (2 - 5)]).float().view(2, 1, 1).expand(2, 4, 1))
    ramp = GuidedLogits(net, torch.tensor([1]), 5, scale=4.0, schedule='linear', num_iter=4)
    for t in range(4):
        ramp.on_step(t)
        ramp(torch.zeros(1, 4, dtype=torch.long))
    assert ramp.scales == [1.75, 2.5, 3.25, 4.0] == [guidance_at(4.0, 'linear', t, 4) for t in range(4)]
    for bad in (-1.0, float('nan'), float('inf'), True):
        with pytest.raises(ValueError, match='guidance scale'):
            check_guidance(bad)
    with pytest.raises(ValueError, match='guidance schedule'):
        check_guidance(2.0, 'cosine')


@pytest.mark.parametrize('guidance,schedule', [(1.0, 'constant'), (2.5, 'constant'), (3.0, 'linear')])
def test_images_do_not_depend_on_the_batch(trained, guidance, schedule):
    together = trained.generate(SEEDS, labels=LABELS, guidance=guidance, guidance_schedule=schedule)
    alone = torch.cat([trained.generate([s], labels=[c], guidance=guidance, guidance_schedule=schedule)
                       for s, c in zip(SEEDS, LABELS)])
    assert torch.equal(together, alone)
    # same (seed, class) in another batch position and company
    other = trained.generate([9, SEEDS[2], 8], labels=[4, LABELS[2], 0], guidance=guidance,
                             guidance_schedule=schedule)
    assert torch.equal(other[1], together[2])


def test_label_and_config_errors(trained, checkpoints):
    with pytest.raises(ValueError, match=r'class id 5, out of range: the model has num_classes=5 \(ids 0..4\)'):
        trained.generate_tokens([0], labels=[5])  # the null class is not a class to generate
    with pytest.raises(ValueError, match='got 2 labels for 3 images'):
        trained.generate_tokens([0, 1, 2], labels=[0, 1])
    with pytest.raises(ValueError, match='needs labels'):
        trained.generate_tokens([0])
    with pytest.raises(ValueError, match='guidance scale'):
        trained.generate_tokens([0], labels=[0], guidance=-2.0)
    with pytest.raises(ValueError, match='needs a class-conditional decoder'):
        init_generator(COND_GEN_CFG, cfg_options={'model.neck.num_classes': None})
    # an unconditional checkpoint does not fit a conditional generator (strict load names the key)
    with pytest.raises(ValueError, match='neck.class_embed.weight'):
        init_generator(COND_GEN_CFG, checkpoints['uncond'])
    # a conditional checkpoint with another class count: size mismatch
    with pytest.raises(ValueError,
                       match=r'shapes differ \(neck.class_embed.weight: checkpoint \(6, 32\) vs model \(8, 32\)'):
        init_generator(COND_GEN_CFG, checkpoints['trained'], cfg_options={'model.neck.num_classes': 7})


def test_mmagic_sampling_contract_and_conditional_inferencer(trained, checkpoints, tmp_path):
    out = trained(dict(num_batches=3, labels=2, sample_kwargs=dict(seeds=[1, 2, 3], guidance=2.0)))
    assert [int(s.gt_label.label) for s in out] == [2, 2, 2]
    ref = trained.generate([1, 2, 3], labels=[2, 2, 2], guidance=2.0)
    assert torch.allclose(torch.stack([s.fake_img for s in out]), ref[:, [2, 1, 0]] * 255, atol=1e-4)
    torch.manual_seed(0)
    rnd = trained(dict(num_batches=6))  # no labels: uniform classes from torch's global RNG (mmagic convention)
    assert all(0 <= int(s.gt_label.label) < 5 for s in rnd)

    from mmagic.apis.inferencers import Inferencers
    inferencer = Inferencers(task='conditional', config=COND_GEN_CFG, ckpt=checkpoints['trained'], device='cpu',
                             extra_parameters=dict(num_batches=4), seed=3)
    result, images = inferencer(label=3, result_out_dir=str(tmp_path / 'cond.png'))
    assert int(result['gt_label']) == 3 and tuple(images.shape) == (4, 3, 32, 32)
    assert osp.isfile(tmp_path / 'cond.png')
    result, images = inferencer(label=[0, 1, 2, 4])
    assert int(result['gt_label']) == 0 and tuple(images.shape) == (4, 3, 32, 32)


def test_generator_options_are_validated_at_build():
    with pytest.raises(ValueError, match='guidance schedule'):
        init_generator(COND_GEN_CFG, cfg_options={'model.guidance_schedule': 'cosine'})
    gen = init_generator(COND_GEN_CFG, cfg_options={'model.guidance': 2.0})
    assert gen.guidance == 2.0 and gen.num_classes == 5 and gen.null_class == 5
    assert isinstance(gen.decoding_options(), DecodingOptions)
