from .mage_decoder import MAGEPretrainDecoder

__all__ = ['MAGEPretrainDecoder']
