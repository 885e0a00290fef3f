"""``--cfg-options`` keys cannot inject code into the dumped work-dir config or a checkpoint's ``meta['cfg']``."""
import pytest
from mmengine.config import Config
from tool_utils import load_tool

from mage_mm.utils.cfg_options import check_cfg_options


def payload_key(marker) -> str:
    # no dots inside the payload: mmengine would split the key there
    return f"model.x': getattr(__import__('os'), 'system')('touch {marker}'), 'y"


def test_mmengine_writes_such_a_key_unescaped(tmp_path):
    """The upstream behaviour the check guards against: the dumped text runs the payload when loaded."""
    marker = tmp_path / 'pwned'
    cfg = Config(dict(model=dict(a=1)))
    cfg.merge_from_dict({payload_key(marker): 1})
    Config.fromstring(cfg.pretty_text, '.py')
    assert marker.exists()


@pytest.mark.parametrize('tool', ['train', 'test', 'generate', 'edit'])
def test_tools_refuse_the_key_before_any_config_is_written(tool, tmp_path, capsys):
    marker = tmp_path / 'pwned'
    mod = load_tool(tool)
    argv = {'train': ['cfg.py'], 'test': ['cfg.py', 'ckpt.pth'],
            'generate': ['cfg.py', 'ckpt.pth', '--num-images', '1', '--out-dir', str(tmp_path)],
            'edit': ['cfg.py', 'ckpt.pth', '--image', 'a.png', '--out', 'b.png', '--task', 'inpaint']}[tool]
    with pytest.raises(SystemExit):
        mod.parse_args([*argv, '--cfg-options', 'model.backbone.drop_rate=0.1', payload_key(marker) + '=1'])
    err = capsys.readouterr().err
    assert 'is not a dotted path of identifiers' in err and "model.x'" in err
    assert not marker.exists()
    # ordinary keys and values (strings are written with repr, so quotes in values are harmless)
    ok = mod.parse_args([*argv, '--cfg-options', 'train_dataloader.dataset.pipeline.1.scale=32',
                         "model.name=it's", 'model.sizes=[1,2]'])
    assert ok.cfg_options['model.name'] == "it's"


def test_check_cfg_options_errors():
    assert check_cfg_options({'a.b.0.c': [1, 'x'], 'd': None}) == {'a.b.0.c': [1, 'x'], 'd': None}
    with pytest.raises(ValueError, match="key 'a-b'"):
        check_cfg_options({'a-b': 1})
    with pytest.raises(ValueError, match='nested key'):
        check_cfg_options({'a': {"x'": 1}})
    with pytest.raises(ValueError, match='not a plain literal'):
        check_cfg_options({'a': object()})


def test_init_generator_checks_cfg_options(tmp_path):
    from generation_utils import TINY_GEN_CFG

    from mage_mm.apis import init_generator
    with pytest.raises(ValueError, match='not a dotted path'):
        init_generator(TINY_GEN_CFG, None, cfg_options={payload_key(tmp_path / 'pwned'): 1})
    assert not (tmp_path / 'pwned').exists()
