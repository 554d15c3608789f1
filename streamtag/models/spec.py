"""What the registry knows of one released model: its weights facts and its family's config (no torch)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import ConfigError


def model_key(name: str) -> str:
    """`name` as registry names are written: lower case, `_` for `-` and spaces."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")

class _ReadOnlyArch(dict):
    """The deprecated `spec.arch` view: readable, and a clear error instead of a silent no-op on writes."""

    def __setitem__(self, key, value) -> None:
        raise ConfigError(f"spec.arch is read-only since streamtag 0.2: use "
                          f"create_model(spec.with_config({key}={value!r}))")

    update = setdefault = pop = popitem = clear = __delitem__ = __setitem__  # type: ignore[assignment]


@dataclass(frozen=True)
class ModelSpec:
    """Weights facts of one released model; its architecture and front-end settings are in `config`.

    `config` is the family's own frozen config (e.g. `mobilenet.EfficientATConfig`); it describes
    the released architecture, which a checkpoint's own shapes may override when it loads.
    """

    name: str
    family: str  # the `Family` that builds it
    config: object  # the family's typed architecture / front-end config
    file_name: str
    url: str
    sha256: str | None
    license: str
    sample_rate: int  # model input rate
    embedding_dim: int  # of the released model (a checkpoint's own config may differ)
    min_samples: int  # shortest window or hop accepted, in samples at sample_rate
    num_classes: int = 527  # 0: an embedding-only (self-supervised) release, results carry scores=None
    params_millions: float | None = None
    macs_billions: float | None = None
    mAP: float | None = None
    frame_dim: int | None = None  # size of the frame-level embeddings (None: the model has none)
    frame_hop_s: float | None = None  # time between frame embeddings
    trained_window_s: float | None = None  # input length the model was trained on (warn far below)
    page: str | None = None  # where a person downloads the file, when `url` is not a direct download

    @property
    def has_scores(self) -> bool:
        return self.num_classes > 0

    def with_config(self, **changes) -> "ModelSpec":
        """This spec with some of its family config's fields changed (e.g. EAT `target_length=1024`)."""
        try:
            return dataclasses.replace(self, config=dataclasses.replace(self.config, **changes))
        except TypeError as e:
            raise ConfigError(f"{self.name}: {e}") from None

    @property
    def arch(self) -> dict:
        """Deprecated (0.2): the family config's fields as a read-only dict; use `spec.config`."""
        import warnings
        warnings.warn("ModelSpec.arch is deprecated: read spec.config, change it with spec.with_config(...)",
                      DeprecationWarning, stacklevel=2)
        return _ReadOnlyArch(dataclasses.asdict(self.config))
