from .checkpoint_hook import MAGECheckpointHook, NonFiniteTrainingError
from .knn_eval_hook import KNNEvalHook

__all__ = ['KNNEvalHook', 'MAGECheckpointHook', 'NonFiniteTrainingError']
