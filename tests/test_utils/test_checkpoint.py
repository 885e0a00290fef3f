"""Safe checkpoint loading on torch>=2.6 (weights_only=True with an allow-list)."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from mage_mm.utils.checkpoint import TRUST_ENV, safe_load


class _RunsCodeOnLoad:
    """A pickle payload: unpickling calls ``open(marker, 'w')``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'payload': _RunsCodeOnLoad(str(marker))}, path)
    for load in (lambda: _load_checkpoint(str(path), map_location='cpu'),
                 lambda: CheckpointLoader.load_checkpoint(str(path)), lambda: safe_load(path)):
        with pytest.raises(pickle.UnpicklingError, match='refusing to unpickle .*evil.pth'):
            load()
        assert not marker.exists()


def test_init_cfg_pretrained_uses_safe_loading(tmp_path):
    from mage_mm.models.tokenizers import MAGEVQGAN
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': MAGEVQGAN(arch='tiny').state_dict(), 'x': _RunsCodeOnLoad(str(marker))}, path)
    tok = MAGEVQGAN(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(pickle.UnpicklingError):
        tok.init_weights()
    assert not marker.exists()


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='checkpoint file not found: .*nope.pth'):
        _load_checkpoint(str(tmp_path / 'nope.pth'))


def test_runner_state_round_trips_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('mage_mm_ckpt_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('iter', np.int64(3))
    ckpt = {'meta': {'seed': 0, 'iter': 3, 'cfg': 'model = dict()', 'dataset_meta': {'classes': ('a', 'b')}},
            'state_dict': {'w': torch.ones(2)}, 'message_hub': hub.state_dict(),
            'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1, 'betas': (0.9, 0.95), 'params': [0]}]}}
    path = tmp_path / 'iter_3.pth'
    torch.save(ckpt, path)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer) and buf.mean() == 1.0 and buf.current() == 0.5
    assert loaded['message_hub']['runtime_info']['iter'] == 3


class _GetattrOther:
    """Pickles as ``getattr(numpy.ndarray, 'tofile')``: a getattr that is not a HistoryBuffer statistic."""

    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def test_upstream_history_buffer_loads_and_any_other_getattr_needs_explicit_trust(tmp_path, monkeypatch):
    """mmengine's own HistoryBuffer pickling (statistics methods via getattr) loads unpatched; other getattrs don't."""
    buf = HistoryBuffer()
    buf.update(1.0)
    path = tmp_path / 'upstream.pth'
    torch.save({'message_hub': {'log_scalars': {'loss': buf}}}, path)
    assert 'builtins.getattr' in torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    loaded = safe_load(path)['message_hub']['log_scalars']['loss']
    assert isinstance(loaded, HistoryBuffer) and loaded.mean() == 1.0

    other = tmp_path / 'other.pth'
    torch.save({'x': _GetattrOther()}, other)
    with pytest.raises(pickle.UnpicklingError, match=TRUST_ENV):
        safe_load(other)
    monkeypatch.setenv(TRUST_ENV, str(other))
    assert safe_load(other)['x'] == np.ndarray.tofile


def test_init_cfg_pretrained_loads_a_runner_style_checkpoint(tmp_path):
    from mage_mm.models.tokenizers import MAGEVQGAN
    src = MAGEVQGAN(arch='tiny')
    hub = MessageHub.get_instance('mage_mm_pretrained_test')
    hub.update_scalar('train/loss', 2.0)
    path = tmp_path / 'iter_10.pth'
    torch.save({'meta': {'iter': 10}, 'message_hub': hub.state_dict(),
                'state_dict': {f'backbone.tokenizer.{k}': v for k, v in src.state_dict().items()}}, path)
    tok = MAGEVQGAN(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.tokenizer.'))
    tok.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(tok.state_dict()[k], v), k


def test_compare_state_dicts_names_every_kind_of_mismatch():
    from mage_mm.utils.checkpoint import CheckpointContentError, check_state_dict_fits, compare_state_dicts
    own = {'a.weight': torch.zeros(2, 3), 'a.bias': torch.zeros(2), 'head.w': torch.zeros(4),
           'backbone.tokenizer.e': torch.zeros(5)}
    assert compare_state_dicts(own, dict(own)).fits
    ckpt = {'a.weight': torch.zeros(3, 3), 'extra.x': torch.zeros(1), 'head.w': torch.zeros(4),
            'backbone.tokenizer.e': torch.zeros(6)}
    fit = compare_state_dicts(own, ckpt)
    assert fit.missing == ('a.bias',) and fit.unexpected == ('extra.x',) and fit.num_shared == 3
    assert fit.mismatched == ('a.weight: checkpoint (3, 3) vs model (2, 3)',
                              'backbone.tokenizer.e: checkpoint (6,) vs model (5,)')
    assert fit.problems('M') == ["1 of M's 4 keys are missing (a.bias)", '1 checkpoint keys are not in M (extra.x)',
                                 '2 shapes differ (a.weight: checkpoint (3, 3) vs model (2, 3); '
                                 'backbone.tokenizer.e: checkpoint (6,) vs model (5,))']
    # allowed patterns (fnmatch) are not reported; a checkpoint of another model shares no key
    fit = compare_state_dicts(own, ckpt, allowed_missing=['a.*'], allowed_unexpected=['extra.*'])
    assert not fit.missing and not fit.unexpected and not fit.fits
    assert compare_state_dicts(own, {'x': torch.zeros(1)}).num_shared == 0
    with pytest.raises(CheckpointContentError,
                       match=r'ck.pth does not fit T: tokenizer/model size mismatch: .*a\.bias'):
        check_state_dict_fits(own, ckpt, 'ck.pth', 'T')
    check_state_dict_fits(own, {k: v for k, v in own.items() if k != 'head.w'}, 'ck.pth', 'T', may_miss=['head.w'])
