"""The `streamtag` command line: one module per command, options declared once (`options.py`), and one library call
per command."""
from __future__ import annotations

import click

from .._version import __version__
from .bench import bench
from .common import CliReporter, exit_interrupted, fail, user_errors
from .detections import detections
from .download import download
from .evaluate import evaluate
from .index import index_cmd, search
from .listen import listen
from .models import devices, models_cmd
from .serve import serve
from .tag import tag
from .train import train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtag")
def main() -> None:
    """Streaming sliding-window AudioSet tagging."""


for command in (tag, models_cmd, download, bench, devices, listen, serve, train, evaluate, detections, index_cmd,
                search):
    main.add_command(command)

__all__ = ["CliReporter", "exit_interrupted", "fail", "main", "user_errors"]
