from .knn_eval_hook import KNNEvalHook, knn_scores, linear_probe_scores, pool_features, topk_accuracy

__all__ = ['KNNEvalHook', 'knn_scores', 'linear_probe_scores', 'pool_features', 'topk_accuracy']
