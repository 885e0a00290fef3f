"""Load a ``tools/`` script as a module, so that tests call its ``main(argv)`` in this process."""
import importlib.util
import os.path as osp
import sys
from types import ModuleType

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module (``name`` like ``'generate'`` or ``'dataset_converters/prepare_fashion_mnist'``).

    Each call executes the file afresh under the module name ``mage_mm_tools_<name>`` (registered in
    ``sys.modules`` so that dataclasses and pickling inside the tool resolve their module).
    """
    path = osp.join(REPO_ROOT, 'tools', f'{name}.py')
    if not osp.isfile(path):
        raise FileNotFoundError(f'no tool script {path}')
    mod_name = 'mage_mm_tools_' + name.replace('/', '_')
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module
