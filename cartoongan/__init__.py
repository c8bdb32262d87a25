"""CartoonGAN: train photo-to-cartoon generators and deploy them fast.

`import cartoongan` never imports torch: training and export code is loaded
lazily from `cartoongan.training` and `cartoongan.export`.
"""

from cartoongan.errors import CartoonGANError, InvalidInput, MissingDependency

__version__ = "0.1.0"

__all__ = ["CartoonGANError", "InvalidInput", "MissingDependency", "__version__"]
