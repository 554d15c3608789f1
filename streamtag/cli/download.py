"""`streamtag download NAME...`: fetch official weights into $STREAMTAG_HOME, with a progress bar and a sha256
check (the library call is `streamtag.models.download.fetch_weights`)."""
from __future__ import annotations

import sys

import click

from ..models.download import fetch_weights
from .common import user_errors


class _ProgressBar:
    """A tqdm bar in bytes on stderr, opened at the first report (when the total is known)."""

    def __init__(self, name: str) -> None:
        self.name, self.bar = name, None

    def __call__(self, done: int, total: int | None) -> None:
        from tqdm import tqdm
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.name, unit="B", unit_scale=True, unit_divisor=1024,
                            file=sys.stderr, leave=False, mininterval=0.2)
        bar: tqdm = self.bar
        bar.update(done - bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.command("download")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--force", is_flag=True, help="Download again even when a verified copy is already here.")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar (default: when stderr is a terminal).")
def download(names: tuple[str, ...], force: bool, progress: bool | None) -> None:
    """Fetch the official weights of the models NAME... into $STREAMTAG_HOME, checked against their sha256.

    Offline, says where to download each file and where to save it."""
    show = sys.stderr.isatty() if progress is None else progress
    failed = 0
    for name in names:
        bar = _ProgressBar(name) if show else None
        try:
            with user_errors():
                try:
                    got = fetch_weights(name, progress=bar, force=force)
                finally:
                    if bar is not None:
                        bar.close()
        except click.exceptions.Exit:  # one line said why; the other names are still fetched
            failed += 1
            continue
        what = {"downloaded": f"downloaded {got.size / 1e6:.1f} MB, sha256 checked",
                "present": "already here, sha256 checked", "bundled": "bundled with streamtag"}[got.status]
        click.echo(f"{got.name}: {what}: {got.path}")
    if failed:
        raise click.exceptions.Exit(1)
