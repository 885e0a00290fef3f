"""Monitor representation quality during pretraining (registered as ``KNNEvalHook``)."""
import copy
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.dist import collect_results, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...evaluation.knn import knn_scores, linear_probe_scores, pool_features, topk_accuracy


@HOOKS.register_module()
class KNNEvalHook(Hook):
    """kNN (and optionally a quick linear probe) accuracy of frozen features,
    computed every ``interval`` epochs or iterations of pretraining.

    Features are ``model.extract_feat(inputs)`` pooled by :func:`pool_features`
    (for :class:`MAGE`: the mean of the image-token outputs of the unmasked
    encoder). Meant for a small labelled subset (e.g. a few images per class):
    the whole bank is kept in memory. Each rank extracts its shard; rank 0
    computes and logs ``{prefix}/top1`` etc. (logger, message hub and the
    visualizer's scalars).

    Args:
        train_dataloader (dict): Labelled images that form the kNN bank (and
            train the probe); mmpretrain dataloader config.
        val_dataloader (dict): Labelled images to classify.
        interval (int): Evaluate every ``interval`` epochs (``by_epoch``) or
            iterations. Defaults to 1.
        by_epoch (bool): Count epochs or iterations. Defaults to True.
        k (int): Neighbours. Defaults to 20.
        temperature (float): Vote temperature. Defaults to 0.07.
        topk (Sequence[int]): Reported accuracies. Defaults to (1, 5).
        linear_probe_steps (int): Full-batch Adam steps of the quick linear
            probe; 0 disables it. Defaults to 0.
        linear_probe_lr (float): Its learning rate. Defaults to 0.01.
        eval_before_train (bool): Also evaluate the initial weights.
            Defaults to False.
        prefix (str): Metric-name prefix. Defaults to ``'knn'``.
        collect_device (str): ``'cpu'`` or ``'gpu'`` gathering across ranks.
            Defaults to ``'cpu'``.
    """

    priority = 'LOW'

    def __init__(self,
                 train_dataloader: dict,
                 val_dataloader: dict,
                 interval: int = 1,
                 by_epoch: bool = True,
                 k: int = 20,
                 temperature: float = 0.07,
                 topk: Sequence[int] = (1, 5),
                 linear_probe_steps: int = 0,
                 linear_probe_lr: float = 0.01,
                 eval_before_train: bool = False,
                 prefix: str = 'knn',
                 collect_device: str = 'cpu') -> None:
        if interval < 1 or k < 1:
            raise ValueError(f'interval ({interval}) and k ({k}) must be >= 1')
        self.loader_cfgs = dict(train=self._with_defaults(train_dataloader),
                                val=self._with_defaults(val_dataloader))
        self.interval = interval
        self.by_epoch = by_epoch
        self.k = k
        self.temperature = temperature
        self.topk = tuple(topk)
        self.linear_probe_steps = linear_probe_steps
        self.linear_probe_lr = linear_probe_lr
        self.eval_before_train = eval_before_train
        self.prefix = prefix
        self.collect_device = collect_device
        self.loaders = None
        self.last_metrics: Dict[str, float] = {}

    @staticmethod
    def _with_defaults(cfg: dict) -> dict:
        cfg = copy.deepcopy(dict(cfg))
        cfg.setdefault('sampler', dict(type='DefaultSampler', shuffle=False))
        cfg.setdefault('collate_fn', dict(type='default_collate'))
        cfg.setdefault('num_workers', 0)
        return cfg

    # ------------------------------------------------------------- hook points
    def before_train(self, runner) -> None:
        self.loaders = {name: runner.build_dataloader(cfg, seed=runner.seed)
                        for name, cfg in self.loader_cfgs.items()}
        if self.eval_before_train:
            self.evaluate(runner, step=0, iteration=0)

    # the loops count the finished epoch/iteration only after these hooks: hence the + 1
    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self.every_n_epochs(runner, self.interval):
            self.evaluate(runner, step=runner.epoch + 1, iteration=runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.by_epoch and self.every_n_train_iters(runner, self.interval):
            self.evaluate(runner, step=runner.iter + 1, iteration=runner.iter + 1)

    # -------------------------------------------------------------- evaluation
    @torch.no_grad()
    def extract(self, model, loader) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """Pooled features and labels of a whole dataloader (rank 0; None elsewhere)."""
        results = []
        for data in loader:
            data = model.data_preprocessor(data, False)
            inputs = data['inputs']
            if isinstance(inputs, (list, tuple)):
                inputs = inputs[0]
            feats = pool_features(model.extract_feat(inputs)).float().cpu()
            labels = [int(s.gt_label.reshape(-1)[0]) for s in data['data_samples']]
            results.extend(zip(feats, labels))
        results = collect_results(results, len(loader.dataset), self.collect_device)
        if not is_main_process():
            return None
        return torch.stack([f for f, _ in results]), torch.tensor([label for _, label in results])

    def evaluate(self, runner, step: int, iteration: int) -> Dict[str, float]:
        """Extract, classify and log; ``step`` is the finished epoch (``by_epoch``) or iteration count."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        was_training = model.training
        model.eval()
        try:
            train = self.extract(model, self.loaders['train'])
            val = self.extract(model, self.loaders['val'])
        finally:
            model.train(was_training)
        if train is None:
            return {}
        classes = self.loaders['train'].dataset.metainfo.get('classes')
        num_classes = len(classes) if classes else int(max(train[1].max(), val[1].max())) + 1
        metrics = {f'{self.prefix}/top{k}': v for k, v in topk_accuracy(
            knn_scores(train[0], train[1], val[0], num_classes, self.k, self.temperature), val[1],
            self.topk).items()}
        if self.linear_probe_steps > 0:
            scores = linear_probe_scores(train[0], train[1], val[0], num_classes, self.linear_probe_steps,
                                         self.linear_probe_lr, seed=runner.seed or 0)
            metrics.update({f'{self.prefix}/linear_top{k}': v
                            for k, v in topk_accuracy(scores, val[1], self.topk).items()})
        runner.logger.info(f'{type(self).__name__} ({"epoch" if self.by_epoch else "iter"} {step}, '
                           f'{len(train[1])} bank / {len(val[1])} query images): ' +
                           ', '.join(f'{k}: {v:.2f}' for k, v in metrics.items()))
        for key, value in metrics.items():
            runner.message_hub.update_scalar(key, value)
        runner.visualizer.add_scalars(metrics, step=iteration)
        self.last_metrics = metrics
        return metrics
