"""Inference runtimes for a network on CPU: torch (eager or TorchScript-frozen), an OpenVINO export, or an ONNX
Runtime export (the `onnxruntime` extra; as fast as OpenVINO here, which is the default and also runs without torch).

An OpenVINO export is made once per (weights file sha256, family config, input shape, OpenVINO and
torch versions), saved atomically under `$STREAMTAG_HOME/compiled/`, and read back in well under a
second afterwards, without torch (the key needs no network); an entry that cannot be read is
rebuilt, never used. The export has a fixed input shape except the
batch (a window length gives one shape), and runs in float32 (OpenVINO's CPU default on machines
with bf16 units is bf16, which moves scores by up to 0.6).
"""
from __future__ import annotations

import hashlib
import importlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, DependencyError
from .weights import streamtag_home

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

log = logging.getLogger("streamtag")
RUNTIMES = ("auto", "torch", "openvino", "onnxruntime")
EXPORT_RUNTIMES = ("openvino", "onnxruntime")  # the runtimes that run an export of an exportable network
EXPORT_FORMAT = 2  # bump when the export recipe or its key changes: old cache entries are then never read
EXPORT_FILE = "network.xml"  # in a cache entry's folder, beside network.bin
BLOB_FOLDER = "blobs"  # in a cache entry's folder: OpenVINO's own compiled-model cache (CACHE_DIR)


def openvino_available() -> bool:
    """Whether the `openvino` package is installed (without importing it)."""
    try:
        metadata.version("openvino")
        return True
    except metadata.PackageNotFoundError:
        return False


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime and the `onnx` package (torch's exporter needs it) are installed (without importing)."""
    try:
        metadata.version("onnxruntime")
        metadata.version("onnx")
        return True
    except metadata.PackageNotFoundError:
        return False


def check_runtime(name: str) -> str:
    """`name` if it is one of RUNTIMES, else ConfigError."""
    if name not in RUNTIMES:
        raise ConfigError(f"unknown runtime {name!r} (use {', '.join(RUNTIMES)})")
    return name


def choose_runtime(requested: str, exportable: bool, device: "str | torch.device", precision: str) -> str:
    """The runtime to use: "auto" is OpenVINO for exportable networks on CPU in fp32 when installed, else torch.

    `device` is a torch.device or its type ("cpu", "cuda").
    """
    kind = device if isinstance(device, str) else device.type
    if check_runtime(requested) in EXPORT_RUNTIMES:
        if kind != "cpu" or precision != "fp32":
            raise ConfigError(f"the {requested} runtime runs on CPU in fp32 (use runtime torch for CUDA or bf16)")
        if not exportable:
            engine = {"openvino": "OpenVINO", "onnxruntime": "ONNX"}[requested]
            raise ConfigError(f"this model's network has no {engine} export (DyMN and the transformers run on "
                              "torch): use runtime torch or auto")
        if requested == "openvino" and not openvino_available():
            raise DependencyError("the openvino runtime needs OpenVINO, which streamtag installs: pip install openvino")
        if requested == "onnxruntime" and not onnxruntime_available():
            raise DependencyError("the onnxruntime runtime needs ONNX Runtime and onnx: "
                                  "pip install 'streamtag[onnxruntime]'")
        return requested
    if requested == "auto" and exportable and kind == "cpu" and precision == "fp32" and openvino_available():
        return "openvino"
    return "torch"


def network_digest(network: "nn.Module") -> str:
    """sha256 over the network's class, parameter and buffer names, shapes, dtypes and values."""
    import torch
    h = hashlib.sha256(f"{type(network).__module__}.{type(network).__qualname__}".encode())
    for name, t in network.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def import_openvino():
    """`openvino`, imported with its usage telemetry off and without its model converter (`openvino.tools.ovc`).

    Importing OpenVINO starts its converter's Google Analytics client (a client id under ~/intel and
    usage reports) unless `openvino_telemetry` cannot be imported, in which case it uses a silent stub;
    streamtag makes it unimportable for that, when OpenVINO is not already loaded. The converter
    (a tenth of the import time) is optional to OpenVINO's package and unused here: streamtag
    converts through the PyTorch front-end.

    OpenVINO's numpy bridge (pybind11's numpy API, behind a C++ function-local static) is set up here, once, under
    a lock: set up lazily by the first conversion, two threads converting at once (the network threads' first
    inferences) deadlock on that static and the GIL.
    """
    with _OPENVINO_LOCK:
        if "openvino" not in sys.modules:
            _import_openvino_quietly()
        import openvino
        global _numpy_bridge_ready
        if not _numpy_bridge_ready:
            openvino.Type.f32.to_dtype()
            openvino.Tensor(np.zeros(1, np.float32), shared_memory=False)
            _numpy_bridge_ready = True
    return openvino


_OPENVINO_LOCK = threading.Lock()
_numpy_bridge_ready = False


def _import_openvino_quietly() -> None:
    """Import `openvino` without its telemetry client and converter."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    blocked = "openvino.tools.ovc" not in sys.modules
    if blocked:
        sys.modules["openvino.tools.ovc"] = None  # type: ignore[assignment]
    try:
        importlib.import_module("openvino")
    finally:
        if blocked:  # importable again for whoever wants it
            del sys.modules["openvino.tools.ovc"]


def export_identity(family: str, config: object, num_classes: int, weights_sha256: str) -> str:
    """What an export of a registered network is keyed on besides its input: family, config, classes, weights file."""
    return f"{family}|{config!r}|{num_classes}|weights:{weights_sha256}"


def export_folder(identity: str, shape: tuple[int, ...], packages: tuple[str, ...] = ("openvino", "torch"),
                  prefix: str = "") -> Path:
    """The cache entry of an export: keyed by `identity`, the input shape (less the batch), the installed versions
    of the `packages` that make and run it (read without importing them) and EXPORT_FORMAT."""
    parts = [identity, str(tuple(shape)), *(metadata.version(p) for p in packages), str(EXPORT_FORMAT)]
    return compiled_cache() / (prefix + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32])


def compiled_cache() -> Path:
    """Where OpenVINO exports are kept."""
    return streamtag_home() / "compiled"


def default_threads() -> int:
    """OpenVINO's CPU threads: torch's count when torch is loaded, else OMP_NUM_THREADS, else the usable CPUs."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class CompiledExport:
    """An export compiled for the CPU (float32): numpy features [B, ...] -> tuple of numpy outputs, for any B.

    It runs as one OpenVINO stream per thread, each a single thread: a call splits its batch across the
    streams, and calls from several threads at once (the pipeline's network threads) share them, without the
    barriers of one inference spread over all threads, which stall whenever another thread takes a core.
    Each stream's part runs at a static batch (OpenVINO's CPU kernels run about 6 % faster on a static shape than
    on a dynamic one): the first call compiles the export for its part size (a file's first call is a full batch),
    later calls pad a smaller part with zeros to that size (rows are independent) and run a larger batch in rounds
    of it. So after a thread's first call nothing is compiled or allocated: a live stream that falls behind and
    catches up in larger batches keeps its memory (compiling each new size had added ~100 MB mid-run).
    `from_folder` reads a cache entry, and compiles it through OpenVINO's own compiled-model cache in that folder
    (a later process imports the compiled blob, keyed by the model and its shape); it raises if the entry cannot
    be read.
    """

    def __init__(self, model, threads: int | None = None, blobs: Path | None = None) -> None:
        """`model`: an `openvino.Model` or the path of a saved one; `blobs`: OpenVINO's CACHE_DIR (None: no cache)."""
        ov = import_openvino()
        threads = int(threads or default_threads())
        self._core = ov.Core()
        self._model = self._core.read_model(str(model)) if isinstance(model, (str, os.PathLike)) else model
        self._config: dict = {"INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": threads,
                              "INFERENCE_NUM_THREADS": threads}
        if blobs is not None:
            self._config["CACHE_DIR"] = str(blobs)
        self.shape = tuple(int(d) for d in self._model.inputs[0].get_partial_shape()[1:].to_shape())
        self._output_shapes = [tuple(int(d) for d in o.get_partial_shape()[1:].to_shape())
                               for o in self._model.outputs]
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.streams = max(1, min(threads, usable))  # OpenVINO keeps to the cores it has; set by the first compile
        self._static: tuple[int, object] | None = None  # the part size and the model compiled for it
        self._compile_lock = threading.Lock()
        self._local = threading.local()  # each calling thread's infer requests, one per stream

    @classmethod
    def from_folder(cls, folder: Path, threads: int | None = None) -> "CompiledExport":
        """The export saved in cache entry `folder` (its blobs cached beside it)."""
        return cls(str(folder / EXPORT_FILE), threads, folder / BLOB_FOLDER)

    @property
    def part_size(self) -> int | None:
        """The rows each stream runs at once, set by the first call (None before it)."""
        return None if self._static is None else self._static[0]

    @property
    def compiled(self):
        """The compiled model (for part size 1 if no call has compiled it yet)."""
        return self._compiled_for(1)[1]

    def __call__(self, features: np.ndarray) -> tuple[np.ndarray, ...]:
        if tuple(features.shape[1:]) != self.shape:
            raise ConfigError(f"this OpenVINO export takes inputs [B, {', '.join(map(str, self.shape))}], "
                              f"got {list(features.shape)}")
        x = np.ascontiguousarray(features, dtype=np.float32)
        if not len(x):
            return tuple(np.zeros((0, *shape), np.float32) for shape in self._output_shapes)
        size, compiled = self._compiled_for(-(-len(x) // self.streams))
        requests = self._requests(compiled)
        outputs: list[list[np.ndarray]] = [[] for _ in self._output_shapes]
        for first in range(0, len(x), size * len(requests)):  # one round: a part of at most `size` rows per stream
            parts = [x[i:i + size] for i in range(first, min(len(x), first + size * len(requests)), size)]
            # the last rows of a batch get zeros after them (their outputs dropped); each input array stays referenced
            # here until its request is done (the requests share its memory)
            feeds = [part if len(part) == size else
                     np.concatenate([part, np.zeros((size - len(part), *self.shape), np.float32)]) for part in parts]
            for request, feed in zip(requests, feeds):
                request.start_async({0: feed}, share_inputs=True)
            for request, part in zip(requests, parts):
                request.wait()
                for i, out in enumerate(outputs):  # copied out of the request's buffer, which its next part reuses
                    out.append(request.get_output_tensor(i).data[:len(part)].copy())
        return tuple(np.concatenate(out) for out in outputs)

    def _compiled_for(self, rows: int) -> tuple[int, object]:
        """The part size and its compiled model: compiled for `rows` rows by the first call, that one after."""
        static = self._static
        if static is None:
            with self._compile_lock:
                if self._static is None:
                    ov = import_openvino()
                    model = self._model.clone()
                    model.reshape({model.inputs[0]: ov.PartialShape([rows, *self.shape])})
                    compiled = self._core.compile_model(model, "CPU", self._config)
                    self.streams = int(compiled.get_property("NUM_STREAMS"))
                    self._static = (rows, compiled)
                static = self._static
        assert static is not None
        return static

    def _requests(self, compiled) -> list:
        """This thread's infer requests, one per stream (thread-local, all made on its first call)."""
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = [compiled.create_infer_request() for _ in range(self.streams)]
        return requests


def save_atomically(folder: Path, write) -> bool:
    """Run `write(tmp)` on a temporary folder beside `folder`, then rename it into place; False if it could not."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", suffix=".partial", dir=folder.parent))
        try:
            write(tmp)
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return True
    except OSError as e:  # a read-only home still runs, it just exports again next time
        log.warning("could not cache the export in %s (%s)", folder.parent, e.strerror or e)
        return False


def _export(network: "nn.Module", features: "Tensor"):
    """The OpenVINO model of `network` traced on `features`, through the PyTorch front-end directly.

    (`openvino.convert_model` does the same and adds a usage report when its telemetry is on.)
    """
    import torch
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

    The export is cached under `identity` (`export_identity` of the weights file it was loaded from;
    None: a digest of the network's own state) and the input shape; `threads` is OpenVINO's CPU
    thread count (default: torch's).
    """

    def __init__(self, network: "nn.Module", features: "Tensor", threads: int | None = None,
                 identity: str | None = None) -> None:
        self.shape = tuple(features.shape[1:])
        folder = export_folder(identity or f"state:{network_digest(network)}", self.shape)
        self.export = self._cached_or_exported(network, features, folder, threads)

    def _cached_or_exported(self, network: "nn.Module", features: "Tensor", folder: Path,
                            threads: int | None) -> CompiledExport:
        ov = import_openvino()
        if (folder / EXPORT_FILE).is_file():
            try:
                return CompiledExport.from_folder(folder, threads)
            except Exception as e:  # corrupt or truncated: rebuild it
                log.warning("rebuilding the OpenVINO export %s (%s)", folder, str(e).splitlines()[0] if str(e) else e)
        model = _export(network, features)
        model.reshape({model.inputs[0]: ov.PartialShape([-1, *self.shape])})
        if self._save(model, folder):
            return CompiledExport.from_folder(folder, threads)
        return CompiledExport(model, threads)  # not saved (a read-only home): compiled from memory
    @staticmethod
    def _save(model, folder: Path) -> bool:
        ov = import_openvino()
        return save_atomically(folder, lambda tmp: ov.save_model(model, str(tmp / EXPORT_FILE), compress_to_fp16=False))

    def __call__(self, features: "Tensor") -> tuple:
        import torch
        return tuple(torch.from_numpy(out) for out in self.export(features.detach().cpu().numpy()))


ONNX_FILE = "network.onnx"


def onnx_folder(identity: str, shape: tuple[int, ...]) -> Path:
    """The cache entry of an ONNX export: as `export_folder`, keyed by onnx's, ONNX Runtime's and torch's versions."""
    return export_folder(identity, shape, ("onnx", "onnxruntime", "torch"), prefix="onnx-")


class OnnxRuntimeNetwork:
    """A network exported to ONNX for one input shape (any batch) and run by ONNX Runtime on the CPU in float32,
    called like the network: features -> tuple. Cached as `OpenVINONetwork` is; intra-op threads `threads`
    (default: torch's), without spinning (spinning workers starve the pipeline's other threads on small machines).
    """

    def __init__(self, network: "nn.Module", features: "Tensor", threads: int | None = None,
                 identity: str | None = None) -> None:
        self.shape = tuple(features.shape[1:])
        folder = onnx_folder(identity or f"state:{network_digest(network)}", self.shape)
        self.session = self._cached_or_exported(network, features, folder, int(threads or default_threads()))

    @staticmethod
    def _session(path: Path, threads: int):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _cached_or_exported(self, network: "nn.Module", features: "Tensor", folder: Path, threads: int):
        if (folder / ONNX_FILE).is_file():
            try:
                return self._session(folder / ONNX_FILE, threads)
            except Exception as e:  # corrupt or truncated: rebuild it
                log.warning("rebuilding the ONNX export %s (%s)", folder, str(e).splitlines()[0] if str(e) else e)
        if save_atomically(folder, lambda tmp: _export_onnx(network, features, tmp / ONNX_FILE)):
            return self._session(folder / ONNX_FILE, threads)
        with tempfile.TemporaryDirectory() as tmp:  # not saved (a read-only home): exported for this run only
            _export_onnx(network, features, Path(tmp) / ONNX_FILE)
            return self._session(Path(tmp) / ONNX_FILE, threads)

    def __call__(self, features: "Tensor") -> tuple:
        import torch
        if tuple(features.shape[1:]) != self.shape:
            raise ConfigError(f"this ONNX export takes inputs [B, {', '.join(map(str, self.shape))}], "
                              f"got {list(features.shape)}")
        x = np.ascontiguousarray(features.detach().cpu().numpy(), dtype=np.float32)
        return tuple(torch.from_numpy(out) for out in self.session.run(None, {"features": x}))


def _export_onnx(network: "nn.Module", features: "Tensor", path: Path) -> None:
    """`network` traced on `features` into an ONNX file (TorchScript exporter, opset 17, a dynamic batch only)."""
    import torch
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(network.eval(), (features.detach().clone(),), str(path), dynamo=False, opset_version=17,
                          input_names=["features"], dynamic_axes={"features": {0: "batch"}})
