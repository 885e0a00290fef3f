"""Packaging for mage_mm.

Every range comes from ``requirements/`` (nothing is duplicated here): ``runtime.txt`` is
``install_requires``; ``detection.txt``, ``generation.txt``, ``tests.txt`` and ``lint.txt`` are the extras.
The OpenMMLab stack is deliberately *not* in ``install_requires`` beyond what is safe to resolve: a plain
``pip install mmagic`` drags in a diffusers, transformers and mediapipe that break ``import mmagic.models``.
The tested way to install everything is ``make venv`` (``tools/install_env.sh``), which applies the pins of
``requirements/constraints.txt`` and installs the venv startup hook (``tools/env/startup_hook.py``).
"""
import os
import os.path as osp
import shutil
import sys
from typing import List

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mage_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(name: str) -> List[str]:
    """The requirement lines of ``requirements/<name>.txt`` (comments, blanks and pip options dropped)."""
    reqs = []
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def read_readme() -> str:
    path = osp.join(HERE, 'README.md')
    if not osp.exists(path):
        return ''
    with open(path, encoding='utf-8') as f:
        return f.read()


#: what ``mim`` reads from ``<package>/.mim`` (``mim search``, ``mim train|test`` by config name)
MIM_FILES = ('model-index.yml', 'configs', 'tools')


def add_mim_extension() -> None:
    """Put the model index, configs and tools into ``mage_mm/.mim`` as OpenMMLab packages do.

    A built wheel or sdist gets copies (so an installed ``mage_mm`` answers ``mim search mage_mm``); any other
    command (an editable install from the checkout) gets relative links, which stay current. ``mage_mm/.mim``
    is ignored by git.
    """
    mode = 'copy' if any(cmd in sys.argv for cmd in ('bdist_wheel', 'sdist')) else 'symlink'
    mim_dir = osp.join(HERE, 'mage_mm', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(HERE, name), osp.join(mim_dir, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


add_mim_extension()

setup(
    name='mage_mm',
    version=read_version(),
    description='MAGE (MAsked Generative Encoder) for the OpenMMLab ecosystem',
    long_description=read_readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mage_mm', 'mage_mm.*']),
    python_requires='>=3.9',
    install_requires=parse_requirements('runtime'),
    extras_require={name: parse_requirements(name) for name in ('detection', 'generation', 'tests', 'lint')},
    include_package_data=True,
    package_data={'mage_mm': ['.mim/model-index.yml', '.mim/configs/**/*', '.mim/tools/**/*']},
    license='MIT',
    zip_safe=False,
)
