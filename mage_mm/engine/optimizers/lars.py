"""LARS as the official MAE/MAGE linear probe uses it (registered as ``MAGELARS``)."""
from typing import Callable, Iterable, Optional

import torch
from mmpretrain.registry import OPTIMIZERS
from torch.optim.optimizer import Optimizer


@OPTIMIZERS.register_module()
class MAGELARS(Optimizer):
    """Layer-wise adaptive rate scaling with the update rule of the official
    linear probe (``util/lars.py`` of MAE and MAGE).

    For every parameter with more than one dimension the update
    ``d = grad + weight_decay * p`` is scaled by the trust ratio
    ``trust_coefficient * |p| / |d|`` (1 when either norm is 0); 1-D parameters
    (biases, norms) get neither weight decay nor trust scaling. Then
    ``mu = momentum * mu + d`` and ``p -= lr * mu``.

    Differences from mmpretrain's ``LARS`` that make this class necessary for
    a faithful recipe: there the learning rate is folded into the momentum
    buffer (``buf = m * buf + lr * d``), which differs from the official rule
    whenever the lr changes (warm-up, cosine), and 1-D parameters are only
    excluded through a ``lars_exclude`` flag in the parameter groups.

    Args:
        params (Iterable): Parameters or parameter groups.
        lr (float): Learning rate.
        weight_decay (float): Weight decay of >1-D parameters. Defaults to 0.
        momentum (float): Momentum. Defaults to 0.9.
        trust_coefficient (float): LARS coefficient. Defaults to 0.001.
    """

    def __init__(self,
                 params: Iterable,
                 lr: float,
                 weight_decay: float = 0.0,
                 momentum: float = 0.9,
                 trust_coefficient: float = 0.001) -> None:
        if lr < 0.0:
            raise ValueError(f'invalid learning rate {lr}')
        if weight_decay < 0.0 or momentum < 0.0 or trust_coefficient < 0.0:
            raise ValueError(f'weight_decay ({weight_decay}), momentum ({momentum}) and trust_coefficient '
                             f'({trust_coefficient}) must be >= 0')
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      trust_coefficient=trust_coefficient))

    @torch.no_grad()
    def step(self, closure: Optional[Callable] = None) -> Optional[torch.Tensor]:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                update = p.grad
                if p.ndim > 1:
                    update = update.add(p, alpha=group['weight_decay'])
                    param_norm, update_norm = torch.norm(p), torch.norm(update)
                    one = torch.ones_like(param_norm)
                    ratio = torch.where((param_norm > 0) & (update_norm > 0),
                                        group['trust_coefficient'] * param_norm / update_norm, one)
                    update = update.mul(ratio)
                state = self.state[p]
                if 'momentum_buffer' not in state:
                    state['momentum_buffer'] = torch.zeros_like(p)
                buf = state['momentum_buffer']
                buf.mul_(group['momentum']).add_(update)
                p.add_(buf, alpha=-group['lr'])
        return loss
