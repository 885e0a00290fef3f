from .class_embedding import ClassEmbedding
from .mage_decoder import MAGEPretrainDecoder

__all__ = ['ClassEmbedding', 'MAGEPretrainDecoder']
