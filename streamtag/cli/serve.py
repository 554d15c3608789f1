"""`streamtag serve`: several sources in one process, a live dashboard and a network API (streamtag[serve])."""
from __future__ import annotations

import click

from ..models.loader import LIVE_WINDOWS
from .common import CliReporter, user_errors
from .options import RECONNECT, TOKEN, labels_option, model_options, quiet_option, target_options, window_options


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--source", "sources", multiple=True, metavar="[NAME=]INPUT", help=(
    "A source to tag (repeat for several): an input device (name substring, e.g. pulse, or default), a network "
    "stream URL (http(s), rtsp) or a file; NAME= names it in the dashboard and the API."))
@click.option("--bind", default=None, metavar="HOST:PORT", help=(
    "Where to listen (default: the config's, else 127.0.0.1:8765); anything but loopback needs a token."))
@click.option(*TOKEN[0], **TOKEN[1])
@click.option("--realtime", is_flag=True, help="File sources play at real time, as live sources (demonstrations).")
@click.option("--loop", is_flag=True, help="Realtime file sources start again at their end.")
@click.option(*RECONNECT[0], **RECONNECT[1])
@model_options()
@window_options(*LIVE_WINDOWS)
@labels_option
@target_options(precision=False)
@quiet_option
def serve(config, sources, bind, token, realtime, loop, reconnect, model, window, hop, labels_path, target,
          quiet) -> None:
    """Tag one or more sources live and serve a dashboard and a network API (WebSocket /ws, SSE /events, REST
    /api/...) from one process. CONFIG: a TOML file of sources and settings (see docs/api-network.md).

    Sources that use the same model and windows share one loaded copy. Ctrl-C stops every source cleanly.
    """
    from ..server.config import ServeConfig, require_serve
    reporter = CliReporter(quiet)
    with user_errors():
        cfg = ServeConfig.create(config, sources, model=model if model.members or model.head else None,
                                 window=window, hop=hop, target=target, bind=bind, token=token, realtime=realtime,
                                 loop=loop, reconnect=reconnect, labels=labels_path)
        require_serve()
        from ..server.app import serve as run_server
        run_server(cfg, reporter.notice)
