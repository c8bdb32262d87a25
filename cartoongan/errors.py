"""One exception hierarchy for every user-facing error.

The CLI prints these as one line (no traceback) and exits with code 1.
"""


class CartoonGANError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidInput(CartoonGANError, ValueError):
    """An argument, file or folder is not what was expected."""


class MissingDependency(CartoonGANError, ImportError):
    """An optional package is needed for this feature but is not installed."""


class CheckpointError(CartoonGANError):
    """A checkpoint is missing, corrupt or does not match the run."""


class MissingWeights(CartoonGANError, FileNotFoundError):
    """Pretrained weights (e.g. VGG) were not found; the message says how to get them."""


class TrainingDiverged(CartoonGANError, FloatingPointError):
    """A loss became NaN or infinite; the last checkpoint is kept."""


class BackendUnavailable(CartoonGANError):
    """The asked-for backend (or execution provider) cannot run here."""


class ModelError(CartoonGANError):
    """A model file is missing, corrupt, or not a cartoongan generator."""


class EngineMismatch(CartoonGANError):
    """A TensorRT engine was built for another GPU, TensorRT version, precision or profile."""
