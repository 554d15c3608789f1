"""What `streamtag serve` runs, checked: its sources (each with its own model, windows and thresholds) and where
it listens, from options or a TOML file."""
from __future__ import annotations

import ipaddress
import os
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..audio.ffmpeg import is_url
from ..errors import ConfigError
from ..index.live import ExampleOptions

DEFAULT_BIND = "127.0.0.1:8765"
TOKEN_ENV = "STREAMTAG_TOKEN"
API_VERSION = 1
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class SourceConfig:
    """One source: its input (a device name such as `pulse`, a URL, or a file) and how it is tagged."""

    input: str
    name: str = ""  # shown and used in the API; default: from the input
    model: str | None = None  # None: the default model
    weights: str | None = None
    window_s: float = 1.0
    hop_s: float = 0.5
    top_k: int = 5
    on: float = 0.3  # an event opens at this score ...
    off: float = 0.15  # ... and closes below this one
    min_event_s: float = 0.5
    head: str | None = None
    head_mode: str = "replace"
    realtime: bool = False  # a file source plays at real time (a live source)
    loop: bool = False  # a realtime file starts again at its end
    reconnect: int = 5  # network streams: attempts in a row after a drop (then the source restarts)
    buffer_s: float = 10.0
    examples: tuple[str, ...] = ()  # query-by-example: an event when the source sounds like one of these
    similarity: float = 0.9  # ... at this cosine similarity or more

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
        if not (0 < self.hop_s and 0 < self.window_s):
            raise ConfigError(f"source {self.name}: window and hop must be positive")
        if not 0 <= self.off <= self.on <= 1:
            raise ConfigError(f"source {self.name}: event thresholds need 0 <= off <= on <= 1")
        if self.top_k < 1 or self.reconnect < 0 or not self.buffer_s > 0:
            raise ConfigError(f"source {self.name}: top_k >= 1, reconnect >= 0 and buffer_s > 0 are needed")
        if self.examples:
            ExampleOptions(self.examples, self.similarity)  # checks the files and the threshold
        if self.head_mode not in ("replace", "append"):
            raise ConfigError(f"source {self.name}: head_mode is replace or append, not {self.head_mode!r}")

    @property
    def kind(self) -> str:
        """file, network or device."""
        if is_url(self.input):
            return "network"
        return "file" if os.path.sep in self.input or os.path.isfile(self.input) else "device"

    @property
    def model_key(self) -> tuple:
        """Sources with the same key share one loaded model."""
        return (self.model, self.weights, self.window_s, self.hop_s, self.head, self.head_mode)


def default_name(inp: str) -> str:
    """A source name from its input: a file's stem, a URL's last path part or host, a device's name."""
    base = inp.rstrip("/").rsplit("/", 1)[-1] if "/" in inp else inp
    base = base.split("?")[0].rsplit(".", 1)[0] if "." in base and not is_url(inp) else base
    return re.sub(r"[^A-Za-z0-9_.-]", "-", base)[:64] or "source"


@dataclass(frozen=True)
class ServeConfig:
    """A server: its sources, the address it binds, and who may connect."""

    sources: tuple[SourceConfig, ...]
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None  # required for any bind other than loopback
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed besides the server's own
    client_queue: int = 256  # messages a client may lag behind before it is dropped
    labels: str | None = None  # a label file for every source (default: AudioSet's)
    device: str = "auto"
    extra: dict = field(default_factory=dict, compare=False)  # TOML keys of later features, per section

    def __post_init__(self) -> None:
        if not self.sources:
            raise ConfigError("serve needs at least one source (--source or a config file)")
        names = [s.name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"two sources are named {dup[0]!r}: give each a name (name=... in the config)")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0-65535, got {self.port}")
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(f"binding {self.host} exposes the server beyond this machine: give a token "
                              f"(--token or ${TOKEN_ENV})")
        if self.token is not None and len(self.token) < 8:
            raise ConfigError("the token must have at least 8 characters")
        if self.client_queue < 8:
            raise ConfigError("client_queue must be at least 8 messages")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


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


SOURCE_KEYS = {f.name for f in fields(SourceConfig)} | {"window", "hop"}
LATER_KEYS = {"store", "clips", "alerts", "privacy"}  # the detections database's options (issue #35)


def source_from_dict(d: dict, defaults: dict) -> SourceConfig:
    merged = {**defaults, **d}
    unknown = set(merged) - SOURCE_KEYS - LATER_KEYS
    if unknown:
        raise ConfigError(f"unknown source key(s) in the config: {', '.join(sorted(unknown))}")
    for short in ("window", "hop"):
        if short in merged:
            merged[f"{short}_s"] = merged.pop(short)
    kw = {k: v for k, v in merged.items() if k not in LATER_KEYS}
    try:
        return SourceConfig(**kw)
    except TypeError as e:
        raise ConfigError(f"source {d.get('name') or d.get('input')}: {e}") from None


def load_config(path: str | os.PathLike, **overrides) -> ServeConfig:
    """A `ServeConfig` from a TOML file: `[server]` (bind, token, allowed_origins, labels, device), `[defaults]`
    (keys every source takes) and `[[source]]` tables. `overrides`: options given on the command line."""
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
    base = p.parent
    sources = []
    for d in data.get("source", []):
        d = dict(d)
        inp = str(d.get("input", ""))
        if inp and not is_url(inp) and ("/" in inp or inp.endswith((".wav", ".flac", ".mp3", ".ogg"))):
            d["input"] = str((base / inp).resolve()) if not os.path.isabs(inp) else inp
        sources.append(source_from_dict(d, defaults))
    bind = overrides.pop("bind", None) or server.pop("bind", DEFAULT_BIND)
    host, port = parse_bind(bind)
    token = overrides.pop("token", None) or server.pop("token", None) or os.environ.get(TOKEN_ENV) or None
    kw = {k: server[k] for k in ("labels", "device", "client_queue") if k in server}
    origins = tuple(server.get("allowed_origins", ()))
    extra = {k: v for k, v in data.items() if k in LATER_KEYS}
    return ServeConfig(tuple(sources), host, port, token, origins, extra=extra, **kw, **overrides)
