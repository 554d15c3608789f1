"""Options shared by several commands, each declared once: a decorator adds a group of options to a command and
hands the command one frozen object built from them (validated where that object lives)."""
from __future__ import annotations

import functools
from typing import Any, Callable

import click

from ..errors import StreamtagError
from ..models.loader import BUNDLED_MODEL, DEFAULT_MODEL, PRECISION_NAMES, ModelChoice, RunTarget
from ..models.runtimes import RUNTIMES
from .common import fail

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


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


TOKEN = (("--token",), dict(default=None, envvar="STREAMTAG_TOKEN", show_envvar=True, help=(
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
RECONNECT = (("--reconnect",), dict(
    type=click.IntRange(min=0), default=5, show_default=True, metavar="N",
    help="Network streams: reconnect attempts in a row after a drop (the missing time is a counted gap)."))
reconnect_option = click.option(*RECONNECT[0], **RECONNECT[1])
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress line, summaries or notices.")


__all__ = ["RECONNECT", "TOKEN", "labels_option", "model_options", "option_group", "quiet_option",
           "reconnect_option", "serve_option", "target_options", "window_options"]
