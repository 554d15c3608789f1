"""Inference runtimes for a network on CPU: torch (eager or TorchScript-frozen) or an OpenVINO export.

An OpenVINO export is made once per (network weights, input shape, OpenVINO and torch versions),
saved atomically under `$STREAMTAG_HOME/compiled/`, and read back in well under a second afterwards;
an entry that cannot be read is rebuilt, never used. The export has a fixed input shape except the
batch (a window length gives one shape), and runs in float32 (OpenVINO's CPU default on machines
with bf16 units is bf16, which moves scores by up to 0.6).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError, DependencyError
from .weights import streamtag_home

log = logging.getLogger("streamtag")
RUNTIMES = ("auto", "torch", "openvino")
EXPORT_FORMAT = 1  # bump when the export recipe changes: old cache entries are then never read


def openvino_available() -> bool:
    """Whether the `openvino` package is installed (without importing it)."""
    try:
        metadata.version("openvino")
        return True
    except metadata.PackageNotFoundError:
        return False


def check_runtime(name: str) -> str:
    """`name` if it is one of RUNTIMES, else ConfigError."""
    if name not in RUNTIMES:
        raise ConfigError(f"unknown runtime {name!r} (use {', '.join(RUNTIMES)})")
    return name


def choose_runtime(requested: str, exportable: bool, device: torch.device, precision: str) -> str:
    """The runtime to use: "auto" is OpenVINO for exportable networks on CPU in fp32 when installed, else torch."""
    if check_runtime(requested) == "openvino":
        if device.type != "cpu" or precision != "fp32":
            raise ConfigError("the openvino runtime runs on CPU in fp32 (use runtime torch for CUDA or bf16)")
        if not exportable:
            raise ConfigError("this model's network has no OpenVINO export (DyMN and the transformers run on "
                              "torch): use runtime torch or auto")
        if not openvino_available():
            raise DependencyError("the openvino runtime needs OpenVINO, which streamtag installs: pip install openvino")
        return "openvino"
    if requested == "auto" and exportable and device.type == "cpu" and precision == "fp32" and openvino_available():
        return "openvino"
    return "torch"


def network_digest(network: nn.Module) -> str:
    """sha256 over the network's class, parameter and buffer names, shapes, dtypes and values."""
    h = hashlib.sha256(f"{type(network).__module__}.{type(network).__qualname__}".encode())
    for name, t in network.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def import_openvino():
    """`openvino`, imported with its usage telemetry off.

    Importing OpenVINO starts its converter's Google Analytics client (a client id under ~/intel and
    usage reports) unless `openvino_telemetry` cannot be imported, in which case it uses a silent stub;
    streamtag makes it unimportable for that, when OpenVINO is not already loaded.
    """
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino
    return openvino


def _cache_key(network: nn.Module, features: Tensor) -> str:
    openvino = import_openvino()
    parts = [network_digest(network), str(tuple(features.shape[1:])), openvino.__version__, torch.__version__,
             str(EXPORT_FORMAT)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def compiled_cache() -> Path:
    """Where OpenVINO exports are kept."""
    return streamtag_home() / "compiled"


def _export(network: nn.Module, features: Tensor):
    """The OpenVINO model of `network` traced on `features`, through the PyTorch front-end directly.

    (`openvino.convert_model` does the same and adds a usage report when its telemetry is on.)
    """
    import_openvino()
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decoder = TorchScriptPythonDecoder(network.eval(), example_input=(features.detach().clone(),))
        frontend = FrontEndManager().load_by_framework("pytorch")
        model = frontend.convert(frontend.load(decoder))
    try:
        from openvino._offline_transformations import apply_moc_transformations
    except ImportError:  # the passes moved: the plugin still optimises at compile time
        return model
    apply_moc_transformations(model, cf=False, smart_reshape=True)
    return model


class OpenVINONetwork:
    """A network exported to OpenVINO for one input shape (any batch), called like the network: features -> tuple.

    `threads` is OpenVINO's CPU thread count (default: torch's).
    """

    def __init__(self, network: nn.Module, features: Tensor, threads: int | None = None) -> None:
        ov = import_openvino()
        self.shape = tuple(features.shape[1:])
        self.core = ov.Core()
        model = self._cached_or_exported(network, features)
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads())}
        self.compiled = self.core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def _cached_or_exported(self, network: nn.Module, features: Tensor):
        ov = import_openvino()
        folder = compiled_cache() / _cache_key(network, features)
        xml = folder / "network.xml"
        if xml.is_file():
            try:
                return self.core.read_model(str(xml))
            except Exception as e:  # corrupt or truncated: rebuild it
                log.warning("rebuilding the OpenVINO export %s (%s)", folder, str(e).splitlines()[0] if str(e) else e)
        model = _export(network, features)
        model.reshape({model.inputs[0]: ov.PartialShape([-1, *self.shape])})
        self._save(model, folder)
        return model

    @staticmethod
    def _save(model, folder: Path) -> None:
        """Write the export to a temporary folder beside `folder`, then rename it into place."""
        ov = import_openvino()
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", suffix=".partial", dir=folder.parent))
            try:
                ov.save_model(model, str(tmp / "network.xml"), compress_to_fp16=False)
                if folder.exists():
                    shutil.rmtree(folder, ignore_errors=True)
                os.replace(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as e:  # a read-only home still runs, it just exports again next time
            log.warning("could not cache the OpenVINO export in %s (%s)", folder.parent, e.strerror or e)

    def __call__(self, features: Tensor) -> tuple:
        if tuple(features.shape[1:]) != self.shape:
            raise ConfigError(f"this OpenVINO export takes inputs [B, {', '.join(map(str, self.shape))}], "
                              f"got {list(features.shape)}")
        x = np.ascontiguousarray(features.detach().cpu().numpy(), dtype=np.float32)
        result = self.request.infer({0: x}, share_inputs=True)
        return tuple(torch.from_numpy(np.array(result[out])) for out in self.compiled.outputs)
