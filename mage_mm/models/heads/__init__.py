from .mage_head import MAGEPretrainHead

__all__ = ['MAGEPretrainHead']
