"""CartoonGAN: train photo-to-cartoon generators and deploy them fast.

    from cartoongan import Cartoonizer
    cartoon = Cartoonizer().run(cv2.imread("photo.jpg"))

`import cartoongan` never imports torch: training and export code lives in
`cartoongan.training` and `cartoongan.export` and is imported only when used.
"""

from cartoongan.errors import (
    BackendUnavailable,
    CartoonGANError,
    InvalidInput,
    MissingDependency,
    ModelError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "CartoonGANError",
    "Cartoonizer",
    "InvalidInput",
    "MissingDependency",
    "ModelError",
    "__version__",
]


def __getattr__(name: str):
    if name == "Cartoonizer":  # lazy: `import cartoongan` stays cheap for the training CLI
        from cartoongan.sdk import Cartoonizer

        return Cartoonizer
    raise AttributeError(f"module 'cartoongan' has no attribute {name!r}")
