"""``MAGECheckpointHook``: mmengine's ``CheckpointHook`` made safe to kill, exact to resume, and NaN-aware.

mmengine 0.10.7's ``CheckpointHook`` (a) deletes the oldest checkpoint *before*
writing the new one and writes the new one in place, so a kill during the save
leaves a truncated ``iter_N.pth`` under its final name and, with
``max_keep_ckpts=1``, nothing loadable; (b) saves no random state, so a resumed
run draws other masking ratios, masks, dropout and crops than the run it
continues; (c) saves whatever the weights are, NaN included; (d) accepts any
misspelt option into ``**kwargs`` and fails only at the first save.

This subclass keeps every option and file name of the parent and:

* writes each checkpoint to a hidden temporary file in the same folder, fsyncs
  it, renames it into place, then rewrites ``last_checkpoint`` atomically, and
  only then removes the checkpoints that rotation drops (the old best one
  too); stale temporaries of killed runs are removed at start;
* stores the random states of every rank (torch CPU and CUDA generators,
  numpy, python ``random``) in ``checkpoint['random_states']`` and, on
  ``--resume``, restores them right after mmengine has replayed the data
  loader to the resumed iteration, so the next batch, masking ratio, masks and
  dropout are those of the uninterrupted run; validation runs leave the
  training random streams untouched (states saved before, restored after);
* checks after every training iteration, before any save, that the losses are
  finite and that every parameter is finite and below ``max_abs_weight``; on a
  failure it stops with :class:`NonFiniteTrainingError` naming the iteration,
  the offending loss or parameter and the last checkpoint this check passed;
* refuses unknown options at construction.
"""
import math
import os
import os.path as osp
import random
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import all_gather_object, all_reduce, get_rank, get_world_size, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapperDict
from mmengine.runner.checkpoint import find_latest_checkpoint
from mmpretrain.registry import HOOKS

from ...utils.atomic import atomic_write, is_temp_name, remove_stale_temps, temp_name_for

RANDOM_STATES_KEY = 'random_states'
_STATE_VERSION = 1


class NonFiniteTrainingError(FloatingPointError):
    """The loss or the weights became non-finite (or exploded); no checkpoint of them was written."""


# ----------------------------------------------------------------------------- random states
def get_random_states() -> Dict[str, Any]:
    """This process's random states as plain data (loadable with ``weights_only=True``).

    Returns:
        dict: ``torch`` (ByteTensor), ``cuda`` (list of ByteTensor, empty without
        CUDA), ``numpy`` (dict of key tensor, pos, has_gauss, cached_gaussian) and
        ``python`` (list: version, state ints, gauss_next).
    """
    kind, key, pos, has_gauss, cached = np.random.get_state()
    if kind != 'MT19937':
        raise RuntimeError(f'unexpected numpy global RNG {kind}')
    py_version, py_state, py_gauss = random.getstate()
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = [s.clone() for s in torch.cuda.get_rng_state_all()]
    return dict(torch=torch.get_rng_state().clone(), cuda=cuda,
                numpy=dict(key=torch.from_numpy(key.astype(np.int64)), pos=int(pos), has_gauss=int(has_gauss),
                           cached_gaussian=float(cached)),
                python=[int(py_version), list(py_state), py_gauss])


def set_random_states(states: Dict[str, Any]) -> None:
    """Restore what :func:`get_random_states` returned."""
    torch.set_rng_state(states['torch'])
    cuda = states.get('cuda') or []
    if cuda and torch.cuda.is_available():
        if len(cuda) != torch.cuda.device_count():
            raise RuntimeError(f'the checkpoint holds {len(cuda)} CUDA generator states, this process sees '
                               f'{torch.cuda.device_count()} devices')
        torch.cuda.set_rng_state_all(cuda)
    npst = states['numpy']
    np.random.set_state(('MT19937', npst['key'].numpy().astype(np.uint32), npst['pos'], npst['has_gauss'],
                         npst['cached_gaussian']))
    py_version, py_state, py_gauss = states['python']
    random.setstate((py_version, tuple(py_state), py_gauss))


class _RestoreAfterSkip:
    """Wraps the train loop's data iterator: restore the random states after the ``n``-th ``next``.

    mmengine's ``IterBasedTrainLoop`` replays ``n`` batches on resume to reach
    the same data position; with ``num_workers=0`` those batches run the
    pipeline's random transforms in this process, so the states are restored
    only after the replay, right before the first new batch is loaded.
    """

    def __init__(self, inner, n: int, restore) -> None:
        self._inner, self._n, self._restore, self._count = inner, n, restore, 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self._inner)
        self._count += 1
        if self._count == self._n:
            self._restore()
        return item

    def __getattr__(self, name):
        return getattr(self._inner, name)


# ----------------------------------------------------------------------------- the hook
@HOOKS.register_module()
class MAGECheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with atomic saves, safe rotation, random states and a finiteness check.

    Takes every argument of :class:`mmengine.hooks.CheckpointHook` (unknown ones
    are an error here, not at the first save) and:

    Args:
        save_random_states (bool): Save all ranks' random states and restore them
            on resume. Defaults to True.
        check_finite (bool): Stop when a loss or a parameter is non-finite, before
            any save. Defaults to True.
        max_abs_weight (float, optional): Also stop when a parameter's largest
            absolute value exceeds this (weights that exploded but are still
            finite). Defaults to 1e6. None disables.
        finite_check_interval (int): Check the trainable weights every this many
            iterations; at a save and at the last iteration every parameter,
            frozen ones too. Defaults to 1.
        amp_max_skipped (int): Under ``AmpOptimWrapper`` with a dynamic loss scale
            a non-finite loss skips the step (the scaler handles it); stop only
            after this many consecutive ones. Defaults to 20.
        **kwargs: Those of ``CheckpointHook``.
    """

    priority = 'VERY_LOW'

    def __init__(self,
                 *args,
                 save_random_states: bool = True,
                 check_finite: bool = True,
                 max_abs_weight: Optional[float] = 1e6,
                 finite_check_interval: int = 1,
                 amp_max_skipped: int = 20,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.args:
            # mmengine passes these to Runner.save_checkpoint, which takes none of them: a TypeError at the
            # first save, possibly hours in
            import inspect
            known = sorted(set(inspect.signature(CheckpointHook.__init__).parameters) - {'self', 'kwargs'}
                           | {'save_random_states', 'check_finite', 'max_abs_weight', 'finite_check_interval',
                              'amp_max_skipped'})
            raise TypeError(f'{type(self).__name__} got unknown option(s) {sorted(self.args)}; '
                            f'known options: {", ".join(known)}')
        if finite_check_interval < 1:
            raise ValueError(f'finite_check_interval must be >= 1, got {finite_check_interval}')
        if max_abs_weight is not None and not max_abs_weight > 0:
            raise ValueError(f'max_abs_weight must be > 0 or None, got {max_abs_weight}')
        self.save_random_states = save_random_states
        self.check_finite = check_finite
        self.max_abs_weight = max_abs_weight
        self.finite_check_interval = finite_check_interval
        self.amp_max_skipped = amp_max_skipped
        self.last_good_ckpt: Optional[str] = None
        # (iteration after which the weights were saved, path) of every checkpoint this run wrote or resumed
        self._good: List[tuple] = []
        self._started_from: Optional[str] = None
        self._resume_states: Optional[List[Dict[str, Any]]] = None
        self._gathered_states: Optional[List[Dict[str, Any]]] = None
        self._val_states: Optional[Dict[str, Any]] = None
        self._amp_skipped = 0

    # ------------------------------------------------------------------ start / resume
    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._local() and is_main_process():
            removed = remove_stale_temps(self.out_dir)
            if removed:
                runner.logger.warning(f'removed {len(removed)} partial checkpoint file(s) left by a killed run: '
                                      + ', '.join(osp.basename(p) for p in removed))
        if runner._resume and self.last_good_ckpt is None:
            # the checkpoint we resumed from: its weights passed this check when it was written
            self.last_good_ckpt = self._started_from
            if self._started_from is not None:
                self._good.append((runner.iter, self._started_from))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._started_from = getattr(runner, '_load_from', None) or find_latest_checkpoint(runner.work_dir)
        if not (self.save_random_states and runner._resume):
            return
        states = checkpoint.get(RANDOM_STATES_KEY)
        if states is None:
            runner.logger.warning('the resumed checkpoint has no random states (written by another hook): '
                                  'masking ratios, masks, dropout and augmentation will differ from the '
                                  'uninterrupted run')
            return
        ranks = states.get('ranks', [])
        if len(ranks) != get_world_size():
            runner.logger.warning(f'the resumed checkpoint holds random states of {len(ranks)} process(es), '
                                  f'this run has {get_world_size()}: they are not restored, the run is not an '
                                  'exact continuation')
            return
        self._resume_states = ranks

    def before_train_epoch(self, runner) -> None:
        if self._resume_states is None:
            return
        loop = runner.train_loop
        skip = getattr(loop, '_iter', 0) if hasattr(loop, 'dataloader_iterator') else 0
        if skip > 0:
            loop.dataloader_iterator = _RestoreAfterSkip(loop.dataloader_iterator, skip, self._restore_states)
            runner.logger.info(f'random states of iteration {skip} will be restored once the data loader has '
                               'replayed the trained batches')
        else:  # epoch-based loops resume at an epoch boundary: nothing is replayed
            self._restore_states()

    def _restore_states(self) -> None:
        states, self._resume_states = self._resume_states, None
        if states is not None:
            set_random_states(states[get_rank()])

    # ------------------------------------------------------------------ validation is RNG-neutral
    def before_val(self, runner) -> None:
        if self.save_random_states:
            self._val_states = get_random_states()

    def after_val(self, runner) -> None:
        if self._val_states is not None:
            set_random_states(self._val_states)
            self._val_states = None

    # ------------------------------------------------------------------ the finiteness check
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        will_save = (not self.by_epoch) and (
            self.every_n_train_iters(runner, self.interval, self.save_begin)
            or (self.save_last and self.is_last_train_iter(runner)))
        if self.check_finite:
            final = will_save or self.is_last_train_iter(runner)
            check_weights = final or (runner.iter + 1) % self.finite_check_interval == 0
            self._check(runner, outputs, check_weights, trainable_only=not final)
        if will_save and self.save_random_states and get_world_size() > 1:
            self._gather_states()
        super().after_train_iter(runner, batch_idx, data_batch, outputs)

    def after_train_epoch(self, runner) -> None:
        if not self.by_epoch:
            return
        will_save = self.every_n_epochs(runner, self.interval, self.save_begin) or (
            self.save_last and self.is_last_train_epoch(runner))
        if will_save and self.check_finite:
            self._check(runner, None, True)
        if will_save and self.save_random_states and get_world_size() > 1:
            self._gather_states()
        super().after_train_epoch(runner)

    def _gather_states(self) -> None:
        self._gathered_states = all_gather_object(get_random_states())

    def _loss_problem(self, outputs) -> Optional[str]:
        if not isinstance(outputs, dict):
            return None
        for key, value in outputs.items():
            if 'loss' not in key:
                continue
            value = float(value.detach().float().mean()) if isinstance(value, torch.Tensor) else float(value)
            if not math.isfinite(value):
                return f'{key}={value}'
        return None

    def _weight_problem(self, runner, trainable_only: bool = False) -> Optional[str]:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        # between saves only what the optimizer moves: a frozen tokenizer cannot turn non-finite by training
        # (on the demo's mini it held 40 % of the tensors, 3 of the check's 7 ms a step); a save checks all
        named = [(n, p) for n, p in model.named_parameters()
                 if p.numel() > 0 and (p.requires_grad or not trainable_only)]
        if not named:
            return None
        with torch.no_grad():
            # one inf-norm per tensor in a few fused kernels, then a single device sync
            norms = torch.stack([n.float() for n in torch._foreach_norm([p.detach() for _, p in named], float('inf'))])
            bad = ~torch.isfinite(norms)
            if self.max_abs_weight is not None:
                bad |= norms > self.max_abs_weight
            if not bool(bad.any()):
                return None
            idx = bad.nonzero().flatten().tolist()
        names = [f'{named[i][0]} (max |w| = {float(norms[i]):.3g})' for i in idx[:5]]
        return (f'{len(idx)} of {len(named)} parameter tensors are non-finite or above max_abs_weight='
                f'{self.max_abs_weight}: ' + ', '.join(names) + (' ...' if len(idx) > 5 else ''))

    def _uses_dynamic_loss_scale(self, runner) -> bool:
        wrappers = (runner.optim_wrapper.optim_wrappers.values()
                    if isinstance(runner.optim_wrapper, OptimWrapperDict) else [runner.optim_wrapper])
        # a fixed float loss_scale sets _scale_update_param; 'dynamic' (or a GradScaler dict) leaves it None
        return any(isinstance(w, AmpOptimWrapper) and getattr(w, '_scale_update_param', 0) is None for w in wrappers)

    def _check(self, runner, outputs, check_weights: bool, trainable_only: bool = False) -> None:
        loss_problem = self._loss_problem(outputs)
        weight_problem = self._weight_problem(runner, trainable_only) if check_weights else None
        if get_world_size() > 1:
            # every rank stops together (a lone raise would hang the others in the next all-reduce)
            flag = torch.tensor([float(loss_problem is not None), float(weight_problem is not None)],
                                device=next(runner.model.parameters()).device)
            all_reduce(flag)
            if flag[0] > 0 and loss_problem is None:
                loss_problem = 'a loss on another rank'
            if flag[1] > 0 and weight_problem is None:
                weight_problem = 'weights on another rank'
        if loss_problem is not None and weight_problem is None and self._uses_dynamic_loss_scale(runner):
            self._amp_skipped += 1
            if self._amp_skipped <= self.amp_max_skipped:
                runner.logger.warning(f'non-finite loss at iteration {runner.iter + 1} ({loss_problem}); the '
                                      f'dynamic loss scale skips the step ({self._amp_skipped} in a row)')
                return
        elif loss_problem is None:
            self._amp_skipped = 0
        if loss_problem is None and weight_problem is None:
            return
        what = '; '.join(p for p in (f'loss {loss_problem}' if loss_problem else None,
                                     f'weights: {weight_problem}' if weight_problem else None) if p)
        raise NonFiniteTrainingError(
            f'training stopped at iteration {runner.iter + 1}: {what}. No checkpoint of these weights was '
            f'written. {self.describe_last_good()} Lower the learning rate (or check the data and AMP settings) '
            'before resuming.')

    def describe_last_good(self, failed_iter: Optional[int] = None) -> str:
        """One sentence naming the last checkpoint whose weights passed the check (or saying there is none).

        Args:
            failed_iter (int, optional): The iteration whose forward gave a non-finite loss (the model's own
                stop, before the update). If the last checkpoint holds exactly the weights of that forward, it
                is named as such and the one before it (if still on disk) as the last good one.
        """
        if failed_iter is not None and self._good and self._good[-1][0] == failed_iter - 1:
            bad = self._good[-1][1]
            earlier = [p for _, p in self._good[:-1] if osp.isfile(p)]
            tail = (f'the last good one is {earlier[-1]}; resume with --resume {earlier[-1]}.' if earlier else
                    'no earlier checkpoint of this run is left (rotation removed them).')
            return f'{bad} holds the weights that gave this loss (they were finite when it was written); ' + tail
        if self.last_good_ckpt is not None:
            return (f'The last good checkpoint is {self.last_good_ckpt} (its weights passed this check when it '
                    f'was written); resume with --resume {self.last_good_ckpt}.')
        if self._started_from is not None:
            return f'This run wrote no checkpoint; it started from {self._started_from}.'
        return 'This run wrote no checkpoint.'

    # ------------------------------------------------------------------ what goes into the checkpoint
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.save_random_states:
            return
        ranks = self._gathered_states if get_world_size() > 1 else None
        self._gathered_states = None
        if ranks is None:
            if get_world_size() > 1:
                runner.logger.warning('random states of the other ranks were not gathered for this checkpoint; '
                                      'it is saved without random states')
                return
            ranks = [get_random_states()]
        checkpoint[RANDOM_STATES_KEY] = dict(version=_STATE_VERSION, ranks=ranks)

    # ------------------------------------------------------------------ atomic saving and safe rotation
    def _local(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    def _atomic_runner_save(self, runner, filename: str, **kwargs) -> None:
        """``runner.save_checkpoint`` into a temporary file, then fsync + rename (main process only)."""
        final = osp.join(self.out_dir, filename)
        tmp = temp_name_for(final)
        try:
            runner.save_checkpoint(self.out_dir, osp.basename(tmp), **kwargs)
            if is_main_process():
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, final)
                dir_fd = os.open(self.out_dir, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except BaseException:
            if osp.exists(tmp):
                os.unlink(tmp)
            raise

    def _remove(self, paths: Sequence[str]) -> None:
        for path in paths:
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed checkpoints are folders
                self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        to_remove: List[str] = []
        if self.max_keep_ckpts > 0 and not (len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                # removed only after the new checkpoint is complete (mmengine removes it first)
                to_remove.append(osp.join(self.out_dir, self.filename_tmpl.format(self.keep_ckpt_ids.popleft())))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        self._atomic_runner_save(runner, ckpt_filename, file_client_args=self.file_client_args,
                                 save_optimizer=self.save_optimizer,
                                 save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                                 backend_args=self.backend_args)
        self.last_good_ckpt = self.last_ckpt
        self._good.append((runner.iter + 1, self.last_ckpt))
        if not is_main_process():
            return
        with atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
            f.write(self.last_ckpt)
        self._remove([p for p in to_remove if osp.abspath(p) != osp.abspath(self.last_ckpt)])

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not self._local():
            return super()._save_best_checkpoint(runner, metrics)
        # the parent removes the previous best first and saves in place: defer removals, save atomically
        deferred: List[str] = []
        backend = self.file_backend
        original_remove = backend.remove
        original_save = runner.save_checkpoint

        def save(out_dir, filename, **kwargs):
            if osp.abspath(out_dir) != osp.abspath(self.out_dir) or is_temp_name(filename):
                return original_save(out_dir, filename, **kwargs)
            return self._atomic_runner_save(runner, filename, **kwargs)

        backend.remove = deferred.append
        runner.save_checkpoint = save
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            backend.remove = original_remove
            runner.__dict__.pop('save_checkpoint', None)
        if is_main_process():
            self._remove(deferred)
