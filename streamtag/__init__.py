"""streamtag: streaming sliding-window AudioSet tagging (scores and embeddings per window)."""
__version__ = "0.1.0"

from .audio import ArraySource, FileSource  # noqa: E402
from .errors import (AudioReadError, ConfigError, LabelsError, PipelineError, StreamtagError,  # noqa: E402
                     UnknownModelError, WeightsError, WeightsUnavailableError)
from .models import ModelSpec, create_model, list_models, load_labels  # noqa: E402
from .pipeline import Tagger, TaggerStats, WindowResult  # noqa: E402

__all__ = ["ArraySource", "AudioReadError", "ConfigError", "FileSource", "LabelsError", "ModelSpec",
           "PipelineError", "StreamtagError", "Tagger", "TaggerStats", "UnknownModelError", "WeightsError",
           "WeightsUnavailableError", "WindowResult", "__version__", "create_model", "list_models",
           "load_labels"]
