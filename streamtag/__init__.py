"""streamtag: streaming sliding-window AudioSet tagging (scores and embeddings per window)."""
__version__ = "0.1.0"

import os as _os  # noqa: E402

# OpenMP threads that spin while idle starve the pipeline's own threads (decode, dispatch) on
# small machines: with 2 cores the model ran ~25 % slower. Sleep instead, unless the user chose
# (only effective when torch is imported after streamtag, as in the CLI).
USER_OMP_WAIT_POLICY = _os.environ.get("OMP_WAIT_POLICY")
if _os.environ.get("STREAMTAG_OMP_DEFAULT") != "keep":  # "keep": the benchmark's baseline process
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .audio import ArraySource, FileSource  # noqa: E402
from .errors import (AudioReadError, ConfigError, LabelsError, PipelineError, StreamtagError,  # noqa: E402
                     UnknownModelError, WeightsError, WeightsUnavailableError)
from .models import ModelSpec, create_model, list_models, load_labels  # noqa: E402
from .pipeline import Tagger, TaggerStats, WindowResult  # noqa: E402

__all__ = ["ArraySource", "AudioReadError", "ConfigError", "FileSource", "LabelsError", "ModelSpec",
           "PipelineError", "StreamtagError", "Tagger", "TaggerStats", "UnknownModelError", "WeightsError",
           "WeightsUnavailableError", "WindowResult", "__version__", "create_model", "list_models",
           "load_labels"]
