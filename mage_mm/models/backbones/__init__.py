from .mage_vit import MAGEMaskedOutput, MAGETokenEmbedding, MAGEViT

__all__ = ['MAGEViT', 'MAGETokenEmbedding', 'MAGEMaskedOutput']
