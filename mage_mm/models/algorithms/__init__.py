from .mage import MAGE
from .mage_c import MAGEC
from .mage_cond import MAGECond

__all__ = ['MAGE', 'MAGEC', 'MAGECond']
