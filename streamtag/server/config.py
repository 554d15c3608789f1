"""What `streamtag serve` runs, checked: its sources (each with its own model, windows and thresholds) and where
it listens, from options or a TOML file."""
from __future__ import annotations

import ipaddress
import os
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

from ..audio.ffmpeg import is_url
from ..errors import ConfigError, DependencyError
from ..index.live import ExampleOptions
from ..models.loader import LIVE_WINDOWS, ModelChoice, RunTarget
from ..outputs.events import EventSettings
from ..outputs.monitor import MonitorOptions

DEFAULT_BIND = "127.0.0.1:8765"
TOKEN_ENV = "STREAMTAG_TOKEN"
API_VERSION = 1
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class SourceConfig:
    """One source: its input (a device name such as `pulse`, a URL, or a file) and how it is tagged. window/hop
    None: the head's, else 1 s / 0.5 s."""

    input: str
    name: str = ""  # shown and used in the API; default: from the input
    model: ModelChoice = ModelChoice()  # the model, its weights and head (the default model when empty)
    window_s: float | None = None
    hop_s: float | None = None
    top_k: int = 5
    on: float = 0.3  # an event opens at this score ...
    off: float = 0.15  # ... and closes below this one
    min_event_s: float = 0.5
    realtime: bool = False  # a file source plays at real time (a live source)
    loop: bool = False  # a realtime file starts again at its end
    reconnect: int = 5  # network streams: attempts in a row after a drop (then the source restarts)
    buffer_s: float = 10.0
    examples: tuple[str, ...] = ()  # query-by-example: an event when the source sounds like one of these
    similarity: float = 0.9  # ... at this cosine similarity or more
    monitor: MonitorOptions = MonitorOptions()  # detections database, clips, alerts, privacy, SNR floor

    def __post_init__(self) -> None:
        if isinstance(self.examples, (list, str)):  # TOML gives a list (or one path)
            object.__setattr__(self, "examples", (self.examples,) if isinstance(self.examples, str)
                               else tuple(self.examples))
        if not self.input:
            raise ConfigError("a source needs an input (a device such as pulse, a URL, or a file)")
        if not self.name:
            object.__setattr__(self, "name", default_name(self.input))
        if not NAME.match(self.name):
            raise ConfigError(f"source name {self.name!r}: use 1-64 letters, digits, '.', '_' or '-'")
        if not isinstance(self.monitor, MonitorOptions):
            raise ConfigError(f"source {self.name}: monitor is a MonitorOptions")
        if not isinstance(self.model, ModelChoice):
            raise ConfigError(f"source {self.name}: model is a ModelChoice (ModelChoice.parse(name, weights, head))")
        window, hop = self.window_s, self.hop_s
        if window is None or hop is None:
            window, hop = self.model.windows(window, hop, LIVE_WINDOWS)
            object.__setattr__(self, "window_s", float(window))
            object.__setattr__(self, "hop_s", float(hop))
        if not (0 < hop and 0 < window):
            raise ConfigError(f"source {self.name}: window and hop must be positive")
        if not 0 <= self.off <= self.on <= 1:
            raise ConfigError(f"source {self.name}: event thresholds need 0 <= off <= on <= 1")
        if self.top_k < 1 or self.reconnect < 0 or not self.buffer_s > 0:
            raise ConfigError(f"source {self.name}: top_k >= 1, reconnect >= 0 and buffer_s > 0 are needed")
        if self.examples:
            ExampleOptions(self.examples, self.similarity)  # checks the files and the threshold

    @property
    def kind(self) -> str:
        """file, network or device."""
        if is_url(self.input):
            return "network"
        return "file" if os.path.sep in self.input or os.path.isfile(self.input) else "device"

    @property
    def model_key(self) -> tuple:
        """Sources with the same key share one loaded model."""
        return (self.model, self.window_s, self.hop_s)

    @property
    def events(self) -> EventSettings:
        """How the source's events open and close."""
        return EventSettings(on=self.on, off=self.off, min_duration_s=self.min_event_s)


def default_name(inp: str) -> str:
    """A source name from its input: a file's stem, a URL's last path part or host, a device's name."""
    base = inp.rstrip("/").rsplit("/", 1)[-1] if "/" in inp else inp
    base = base.split("?")[0].rsplit(".", 1)[0] if "." in base and not is_url(inp) else base
    return re.sub(r"[^A-Za-z0-9_.-]", "-", base)[:64] or "source"


def require_serve() -> None:
    """DependencyError naming the fix when the `serve` extra (aiohttp) is not installed."""
    import importlib.util
    if importlib.util.find_spec("aiohttp") is None:
        raise DependencyError("the dashboard and the network API need aiohttp: pip install 'streamtag[serve]'")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_bind(bind: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) -> (host, port); ConfigError for anything else."""
    m = re.match(r"^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+)):(\d{1,5})$", bind.strip())
    if not m:
        raise ConfigError(f"--bind takes HOST:PORT (e.g. {DEFAULT_BIND}), got {bind!r}")
    return m.group(1) or m.group(2), int(m.group(3))


@dataclass(frozen=True)
class NetworkOptions:
    """Where a server listens and who may connect: binding anything but loopback needs a token."""

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None  # required for any bind other than loopback
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed besides the server's own
    client_queue: int = 256  # messages a client may lag behind before it is dropped

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0-65535, got {self.port}")
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(f"binding {self.host} exposes the server beyond this machine: give a token "
                              f"(--token or ${TOKEN_ENV})")
        if self.token is not None and len(self.token) < 8:
            raise ConfigError("the token must have at least 8 characters")
        if self.client_queue < 8:
            raise ConfigError("client_queue must be at least 8 messages")

    @classmethod
    def parse(cls, bind: str = DEFAULT_BIND, token: str | None = None, **kw) -> "NetworkOptions":
        """From a user's HOST:PORT and token (None: $STREAMTAG_TOKEN when set)."""
        host, port = parse_bind(bind)
        return cls(host, port, token or os.environ.get(TOKEN_ENV) or None, **kw)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class ServeConfig:
    """A server: its sources, where it listens and who may connect, the label file, and where models run."""

    sources: tuple[SourceConfig, ...]
    network: NetworkOptions = NetworkOptions()
    labels: str | None = None  # a label file for every source (default: AudioSet's)
    target: RunTarget = RunTarget()

    def __post_init__(self) -> None:
        if not self.sources:
            raise ConfigError("serve needs at least one source (--source or a config file)")
        names = [s.name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"two sources are named {dup[0]!r}: give each a name (name=... in the config, or "
                              "--source NAME=INPUT)")

    @property
    def url(self) -> str:
        return self.network.url

    @classmethod
    def create(cls, config: str | os.PathLike | None = None, sources: Sequence[str] = (), *,
               model: ModelChoice | None = None, window: float | None = None, hop: float | None = None,
               target: RunTarget | None = None, bind: str | None = None, token: str | None = None,
               realtime: bool = False, loop: bool = False, reconnect: int = 5,
               labels: str | None = None) -> "ServeConfig":
        """A server from the command line's parts: a config file (or none) and `sources` (INPUT or NAME=INPUT) tagged
        with `model`/`window`/`hop`; the options win over the file's [server] and [defaults]."""
        given = tuple(parse_source(text, model=model or ModelChoice(), window_s=window, hop_s=hop,
                                   realtime=realtime, loop=loop, reconnect=reconnect) for text in sources)
        if config is not None:
            return load_config(config, model=model, window=window, hop=hop, target=target, bind=bind, token=token,
                               realtime=realtime or None, labels=labels, more=given)
        return cls(given, NetworkOptions.parse(bind or DEFAULT_BIND, token), labels, target or RunTarget())


MODEL_KEYS = ("model", "weights", "head", "head_mode")
MONITOR_KEYS = {"store": "store", "clips": "clips", "clip_padding": "clip_padding_s", "clips_max_gb": "clips_max_gb",
                "alerts": "alerts", "alert_labels": "alert_labels", "alert_cooldown": "alert_cooldown_s",
                "privacy": "privacy", "min_snr": "min_snr_db"}  # TOML key -> MonitorOptions field
SOURCE_KEYS = ({f.name for f in fields(SourceConfig)} - {"model", "window_s", "hop_s", "monitor"}) \
    | set(MODEL_KEYS) | set(MONITOR_KEYS) | {"window", "hop"}
PATH_KEYS = ("weights", "head", "store", "clips")  # relative to the config file
SERVER_KEYS = {"bind", "token", "allowed_origins", "client_queue", "labels", "device", "runtime"}
NAMED = re.compile(r"^([^=/:\\]+)=(.+)$")  # NAME=INPUT (a file whose name has "=": ./a=b.wav)


def parse_source(text: str, **kw) -> SourceConfig:
    """A `--source` value: INPUT, or NAME=INPUT (a device name, a URL or a file)."""
    m = NAMED.match(text)
    if m and not is_url(text):
        return SourceConfig(m.group(2), name=m.group(1), **kw)
    return SourceConfig(text, **kw)


def source_from_dict(d: dict, defaults: dict, model: ModelChoice | None = None) -> SourceConfig:
    """A `[[source]]` table over `[defaults]`; `model`: the command line's choice, used unless the file names one
    (in the source's table or in [defaults])."""
    merged = {**defaults, **d}
    unknown = set(merged) - SOURCE_KEYS
    if unknown:
        raise ConfigError(f"unknown source key(s) in the config: {', '.join(sorted(unknown))}")
    named = {k: merged.pop(k) for k in MODEL_KEYS if k in merged}
    monitor = {MONITOR_KEYS[k]: merged.pop(k) for k in list(merged) if k in MONITOR_KEYS}
    if isinstance(monitor.get("alert_labels"), list):
        monitor["alert_labels"] = tuple(monitor["alert_labels"])
    where = d.get("name") or d.get("input")
    try:
        merged["monitor"] = MonitorOptions(**monitor)
        choice = ModelChoice.parse(named.get("model"), named.get("weights"), named.get("head"),
                                   named.get("head_mode", "replace")) if named else model or ModelChoice()
        return SourceConfig(model=choice, window_s=merged.pop("window", None), hop_s=merged.pop("hop", None),
                            **merged)
    except TypeError as e:
        raise ConfigError(f"source {where}: {e}") from None
    except ConfigError as e:
        raise ConfigError(f"source {where}: {e}") from None


def load_config(path: str | os.PathLike, *, model: ModelChoice | None = None, window: float | None = None,
                hop: float | None = None, target: RunTarget | None = None, bind: str | None = None,
                token: str | None = None, realtime: bool | None = None, labels: str | None = None,
                more: tuple[SourceConfig, ...] = ()) -> ServeConfig:
    """A `ServeConfig` from a TOML file: `[server]` (bind, token, allowed_origins, client_queue, labels, device,
    runtime), `[defaults]` (keys every source takes) and `[[source]]` tables. The keyword options are the command
    line's: they win over `[server]` and `[defaults]` (a source's own keys win over them); `more` are sources
    given on the command line."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the [serve] extra brings tomli there
        import tomli as tomllib
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    unknown = set(data) - {"server", "defaults", "source"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))} (server, defaults, source)")
    server, defaults = dict(data.get("server", {})), dict(data.get("defaults", {}))
    bad = set(server) - SERVER_KEYS
    if bad:
        raise ConfigError(f"{path}: unknown [server] key(s) {', '.join(sorted(bad))}")
    base = p.parent
    defaults = _relative(defaults, base)
    for key, value in (("window", window), ("hop", hop), ("realtime", realtime)):
        if value is not None:
            defaults[key] = value
    sources = []
    for d in data.get("source", []):
        d = _relative(dict(d), base)
        inp = str(d.get("input", ""))
        if inp and not is_url(inp) and ("/" in inp or inp.endswith((".wav", ".flac", ".mp3", ".ogg"))):
            d["input"] = str((base / inp).resolve()) if not os.path.isabs(inp) else inp
        sources.append(source_from_dict(d, defaults, model))
    try:
        network = NetworkOptions.parse(bind or server.get("bind", DEFAULT_BIND), token or server.get("token"),
                                       allowed_origins=tuple(server.get("allowed_origins", ())),
                                       **({"client_queue": server["client_queue"]} if "client_queue" in server
                                          else {}))
        if target is None:
            target = RunTarget(device=server.get("device", "auto"), runtime=server.get("runtime", "auto"))
    except TypeError as e:
        raise ConfigError(f"{path}: [server]: {e}") from None
    label_file = labels or (str(base / server["labels"]) if "labels" in server else None)
    return ServeConfig((*sources, *more), network, label_file, target)


def _relative(d: dict, base: Path) -> dict:
    """Paths a config file names (weights, head) relative to its folder."""
    for key in PATH_KEYS:
        if isinstance(d.get(key), str) and d[key] and not os.path.isabs(d[key]):
            d[key] = ",".join(str((base / part).resolve()) if part else "" for part in d[key].split(","))
    return d
