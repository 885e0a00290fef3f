"""``--cfg-options`` that cannot smuggle code into a dumped config.

mmengine writes a config as Python text (``Config.dump``, the work dir's
``<config>.py`` and every checkpoint's ``meta['cfg']``). String *values* are
written with ``repr`` and are safe, but dict *keys* that are not identifiers
are written as ``'<key>'`` without escaping: a key such as
``model.x': __import__('os').system('...'), 'y`` closes the quote, and whoever
loads the dumped config (``Config.fromfile``, ``Config.fromstring``, mmdet's
``DetInferencer(weights=...)`` without a config) runs it. This module accepts
only keys made of identifiers and list indices, and values made of plain
literals, before they reach the config.
"""
import argparse
import re
from typing import Any, Dict

from mmengine.config import DictAction

_PART = re.compile(r'^(?:[A-Za-z_][A-Za-z0-9_]*|\d+)$')


def _check_value(key: str, value: Any) -> None:
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_value(key, v)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not k.isidentifier():
                raise ValueError(f'--cfg-options {key}: nested key {k!r} is not a Python identifier')
            _check_value(f'{key}.{k}', v)
        return
    raise ValueError(f'--cfg-options {key}: value of type {type(value).__name__} is not a plain literal')


def check_cfg_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """Return ``options`` unchanged if every key is a dotted path of identifiers / list indices.

    Args:
        options (dict): Parsed ``--cfg-options`` (``{'a.b.0.c': value}``).

    Returns:
        dict: ``options``.

    Raises:
        ValueError: Naming the first key (or value) that is not plain data.
    """
    for key, value in (options or {}).items():
        if not isinstance(key, str) or not all(_PART.match(part) for part in key.split('.')):
            raise ValueError(f'--cfg-options key {key!r} is not a dotted path of identifiers and list indices '
                             '(e.g. model.backbone.drop_rate or train_dataloader.dataset.pipeline.1.scale); '
                             'refused because mmengine would write it unescaped into the dumped config')
        _check_value(key, value)
    return options


class SafeDictAction(DictAction):
    """mmengine's ``DictAction`` that refuses keys and values :func:`check_cfg_options` rejects."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        try:
            check_cfg_options(getattr(namespace, self.dest))
        except ValueError as err:
            raise argparse.ArgumentError(self, str(err)) from None


# ------------------------------------------------------------ config text inside checkpoints
#: where mmengine looks for config *text* in a loaded checkpoint and evaluates it with ``Config.fromstring``
#: (Python): ``Runner.resume`` reads ``meta['config']`` (its GPU-count check); ``BaseInferencer`` without a
#: config (e.g. mmdet's ``DetInferencer(weights=...)``) reads ``message_hub['runtime_info']['cfg']``, then
#: ``meta['cfg']``.
EVALUATED_CONFIG_TEXT = (('meta', 'config'), ('meta', 'cfg'), ('message_hub', 'runtime_info', 'cfg'))


def drop_config_text(checkpoint: Any) -> Any:
    """Remove the config text mmengine would evaluate from a loaded checkpoint (in place; returned).

    Used by mage_mm's local-file loader for mmengine's ``CheckpointLoader``, so
    that a checkpoint of plain data (which passes ``weights_only=True``) still
    cannot run code when ``--resume``-d or handed to an inferencer without a
    config: resuming then skips mmengine's GPU-count comparison, and an
    inferencer asks for the config instead of executing the file's. Nothing
    in mage_mm reads these entries (the tokenizer architecture is stored as
    data, see :func:`mage_mm.apis.tokenizer_arch`).

    Args:
        checkpoint: What ``torch.load`` returned.

    Returns:
        The same object.
    """
    for path in EVALUATED_CONFIG_TEXT:
        node = checkpoint
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node:
            del node[path[-1]]
    return checkpoint
