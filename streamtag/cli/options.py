"""Options shared by several commands, each declared once: a decorator adds a group of options to a command and
hands the command one frozen object built from them (validated where that object lives)."""
from __future__ import annotations

import functools
from typing import Any, Callable

import click

from ..errors import StreamtagError
from ..models.loader import BUNDLED_MODEL, DEFAULT_MODEL, PRECISION_NAMES, ModelChoice, RunTarget
from ..models.runtimes import RUNTIMES
from ..outputs.monitor import MonitorOptions
from .common import fail

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
OptionSpec = tuple[tuple[str, ...], dict[str, Any]]  # a click.option's declarations and settings


def option_group(argument: str, build: Callable[..., Any], options: list[tuple[tuple[str, ...], dict]]) -> Decorator:
    """Add `options` to a command and pass `build(**their values)` to it as `argument`; a `StreamtagError` from
    `build` is the command's one-line error."""
    names = [click.Option(list(decls), **kw).name for decls, kw in options]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names}
            try:
                kwargs[argument] = build(**given)
            except StreamtagError as e:
                raise fail(str(e)) from None
            return command(*args, **kwargs)
        for decls, kw in reversed(options):
            wrapper = click.option(*decls, **kw)(wrapper)
        return wrapper
    return decorate


def model_options(head: bool = True) -> Decorator:
    """--model, --weights (and --head, --head-mode) -> `model: ModelChoice`."""
    options: list[tuple[tuple[str, ...], dict]] = [
        (("--model", "model_name"), dict(default=None, metavar="NAME", help=(
            f"Registry name (see `streamtag models`); a,b,c for an ensemble. Default: {DEFAULT_MODEL}, or the "
            f"bundled {BUNDLED_MODEL} offline."))),
        (("--weights",), dict(type=click.Path(), default=None,
                              help="Checkpoint file to load instead of the official one (a,b for an ensemble).")),
    ]
    if head:
        options += [
            (("--head", "head_path"), dict(type=click.Path(dir_okay=False), default=None,
                                           help="A head file from `streamtag train`: tag its classes (on its "
                                                "backbone, by default).")),
            (("--head-mode",), dict(type=click.Choice(["replace", "append"], case_sensitive=False),
                                    default="replace", show_default=True,
                                    help="The head's classes instead of the model's, or after them.")),
        ]

    def build(model_name: str | None, weights: str | None, head_path: str | None = None,
              head_mode: str = "replace") -> ModelChoice:
        return ModelChoice.parse(model_name, weights, head_path, head_mode)
    return option_group("model", build, options)


def window_options(window_s: float, hop_s: float, head: bool = True) -> Decorator:
    """--window and --hop (seconds), each None when not given (the head's, else the command's default)."""
    fallback = " or the head's" if head else ""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option("--hop", default=None, type=float,
                               help=f"Hop between window starts in seconds (default {hop_s:g}{fallback}).")(command)
        return click.option("--window", default=None, type=float,
                            help=f"Window length in seconds (default {window_s:g}{fallback}).")(command)
    return decorate


def target_options(precision: bool = True) -> Decorator:
    """--device, --runtime (and --precision) -> `target: RunTarget`."""
    options: list[tuple[tuple[str, ...], dict]] = [
        (("--device",), dict(default="auto", show_default=True, help="Compute device: auto, cpu or cuda.")),
        (("--runtime",), dict(type=click.Choice(RUNTIMES, case_sensitive=False), default="auto", show_default=True,
                              help="What runs the network on CPU: auto (OpenVINO for MobileNets when installed), "
                                   "torch, openvino, onnxruntime.")),
    ]
    if precision:
        options.append((("--precision",), dict(
            type=click.Choice(PRECISION_NAMES, case_sensitive=False), default="fp32", show_default=True,
            help="fp32 (exact); bf16 autocast (CPU with bf16 units, or CUDA; scores move); fp16 (CUDA).")))

    def build(device: str, runtime: str, precision: str = "fp32") -> RunTarget:
        return RunTarget(device=device, runtime=runtime, precision=precision)
    return option_group("target", build, options)


def _monitor(store, clips, clip_padding, clips_max_gb, alerts, alert_labels, alert_cooldown, privacy,
             min_snr) -> MonitorOptions | None:
    options = MonitorOptions(store=store, clips=clips, clip_padding_s=clip_padding, clips_max_gb=clips_max_gb,
                             alerts=tuple(alerts), alert_labels=alert_labels, alert_cooldown_s=alert_cooldown,
                             privacy=privacy, min_snr_db=min_snr)
    return options if options.enabled else None


monitor_options = option_group("monitor", _monitor, [
    (("--store",), dict(type=click.Path(dir_okay=False), default=None, metavar="DB",
                        help="Store each event in this SQLite detections database (see `streamtag detections`).")),
    (("--clips",), dict(type=click.Path(file_okay=False), default=None, metavar="DIR",
                        help="Write each event's audio (plus padding) as a FLAC clip at the source's rate here.")),
    (("--clip-padding",), dict(type=float, default=1.0, show_default=True, metavar="S",
                               help="Seconds of audio kept before and after each event in its clip.")),
    (("--clips-max-gb",), dict(type=float, default=None, metavar="G",
                               help="Keep the clips folder under G gigabytes (oldest clips deleted first).")),
    (("--alert", "alerts"), dict(multiple=True, metavar="URL", help=(
        "Send each event's start and end to mqtt://[user:pass@]host:port/topic (with Home Assistant discovery), "
        "http(s)://... (a JSON POST) or exec:COMMAND; repeatable."))),
    (("--alert-labels",), dict(default=None, metavar="NAMES", help="Only alert for these labels (comma-separated).")),
    (("--alert-cooldown",), dict(type=float, default=0.0, show_default=True, metavar="S",
                                 help="At most one alert per label per S seconds.")),
    (("--privacy",), dict(default=None, metavar="LABELS[=T]", help=(
        "Windows where these labels reach their threshold (default 0.1) are private: never written to clips or "
        "embedding outputs, events overlapping them marked redacted (e.g. Speech or Speech=0.2,Laughter)."))),
    (("--min-snr",), dict(type=float, default=None, metavar="DB",
                          help="Drop events whose level is less than DB above the running noise floor.")),
])


TOKEN: OptionSpec = (("--token",), dict(default=None, envvar="STREAMTAG_TOKEN", show_envvar=True, help=(
    "Token every HTTP request and WebSocket must carry (Bearer, ?token= or the page's cookie); required to bind "
    "anything but loopback.")))


def serve_option(flag: str = "--serve") -> Decorator:
    """`flag` HOST:PORT and --token -> `serve: NetworkOptions | None` (None without `flag`): the dashboard and the
    network API for a command's source (streamtag[serve])."""
    def build(bind: str | None, token: str | None):
        from ..server.config import NetworkOptions  # no aiohttp
        return None if bind is None else NetworkOptions.parse(bind, token)
    return option_group("serve", build, [
        ((flag, "bind"), dict(default=None, metavar="HOST:PORT", help=(
            "Also serve the dashboard and the network API (as `streamtag serve`) on HOST:PORT, e.g. "
            "127.0.0.1:8765."))),
        TOKEN])


labels_option = click.option("--labels", "labels_path", type=click.Path(), default=None,
                             help="AudioSet class_labels_indices.csv.")
RECONNECT: OptionSpec = (("--reconnect",), dict(
    type=click.IntRange(min=0), default=5, show_default=True, metavar="N",
    help="Network streams: reconnect attempts in a row after a drop (the missing time is a counted gap)."))
reconnect_option = click.option(*RECONNECT[0], **RECONNECT[1])
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress line, summaries or notices.")


__all__ = ["RECONNECT", "example_options", "labels_option", "model_options", "monitor_options", "option_group",
           "quiet_option", "reconnect_option", "serve_option", "TOKEN", "target_options", "window_options"]


def example_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--example, --similarity, --events -> `examples: ExampleOptions` (live query-by-example)."""
    from ..index.live import ExampleOptions

    def build(example: tuple[str, ...], similarity: float, events_path: str | None) -> ExampleOptions:
        return ExampleOptions(tuple(example), similarity, events_path)
    return option_group("examples", build, [
        (("--example",), dict(multiple=True, metavar="FILE[:START-END]",
                               help="An event whenever the input sounds like this recording (repeatable; no "
                                    "training).")),
        (("--similarity",), dict(type=float, default=0.9, show_default=True,
                                  help="Cosine similarity to an example that opens its event (it closes 0.05 "
                                       "lower).")),
        (("--events", "events_path"), dict(type=click.Path(dir_okay=False), default=None,
                                           help="Write example events here (JSONL, or CSV for .csv).")),
    ])(command)
