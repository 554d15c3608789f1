"""The `streamtag` command line: one module per command, options declared once (`options.py`), and one library call
per command."""
from __future__ import annotations

import importlib

import click

from .._version import __version__
from .common import CliReporter, exit_interrupted, fail, user_errors

# each command's module, imported when the command runs (or `--help` lists them): `tag` does not import what
# `serve`, `index` or `train` need
COMMANDS = {
    "tag": "tag:tag", "models": "models:models_cmd", "download": "download:download", "bench": "bench:bench",
    "devices": "models:devices", "listen": "listen:listen", "serve": "serve:serve", "train": "train:train",
    "eval": "evaluate:evaluate", "detections": "detections:detections", "index": "index:index_cmd",
    "search": "index:search",
}


class CommandGroup(click.Group):
    """The group of `COMMANDS`, each loaded from its module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(f".{module}", __name__), name)
        return command


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtag")
def main() -> None:
    """Streaming sliding-window AudioSet tagging."""


__all__ = ["CliReporter", "exit_interrupted", "fail", "main", "user_errors"]
