"""Packaging for mage_mm.

Every range comes from ``requirements/`` (nothing is duplicated here): ``runtime.txt`` is
``install_requires``; ``detection.txt``, ``generation.txt``, ``tests.txt`` and ``lint.txt`` are the extras.
The OpenMMLab stack is deliberately *not* in ``install_requires`` beyond what is safe to resolve: a plain
``pip install mmagic`` drags in a diffusers, transformers and mediapipe that break ``import mmagic.models``.
The tested way to install everything is ``make venv`` (``tools/install_env.sh``), which applies the pins of
``requirements/constraints.txt`` and installs the venv startup hook (``tools/env/startup_hook.py``).
"""
import os.path as osp
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
    license='MIT',
    zip_safe=False,
)
