"""What every command shares: one-line errors and exit codes, interrupts, and the stderr reporter."""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Iterator, NoReturn

import click

from ..engines.signals import exit_code, interrupts_from_signals
from ..errors import StreamtagError


def fail(message: str, code: int = 1) -> "click.exceptions.Exit":
    _release_closed_stdout()
    click.echo(f"streamtag: error: {message}", err=True)
    return click.exceptions.Exit(code)


def _release_closed_stdout() -> None:
    """If standard output's reader is gone (`| head`), point it at /dev/null so exiting does not fail again."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def exit_interrupted(code: int, at_once: bool = True) -> NoReturn:
    """Say so and leave with `code` (128 + the signal). Every output is committed or removed by now, so
    `at_once` skips the exit-time destructors of native libraries, which can abort the process
    ("terminate called without an active exception") after a termination signal."""
    click.echo("streamtag: interrupted", err=True)
    if not at_once:
        raise click.exceptions.Exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


@contextlib.contextmanager
def user_errors(at_once: bool = True) -> Iterator[None]:
    """Library errors, OS errors and interrupts (Ctrl-C, SIGTERM, SIGHUP) as one stderr line and an exit status
    (an interrupt exits at once unless `at_once` is False: Ray's driver shuts its cluster down at exit)."""
    try:
        with interrupts_from_signals():
            yield
    except StreamtagError as e:
        raise fail(str(e)) from None
    except BrokenPipeError:
        raise fail("cannot write standard output: its reader closed it (broken pipe)") from None
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise fail(f"{where}{e.strerror or e}") from None
    except MemoryError:
        raise fail("out of memory (try a shorter window or a smaller --batch-size)") from None
    except KeyboardInterrupt as e:
        exit_interrupted(exit_code(e), at_once)


class CliReporter:
    """Reports on stderr: notices unless --quiet, warnings and errors always; with `progress` (default: stderr is a
    terminal and not --quiet) a live line per file that printed results never break."""

    def __init__(self, quiet: bool, prefix: str = "", progress: bool | None = None) -> None:
        self.quiet, self.prefix = quiet, prefix
        self.show_progress = progress if progress is not None else (not quiet and sys.stderr.isatty())

    def _echo(self, line: str) -> None:
        if self.show_progress:
            from tqdm import tqdm
            with tqdm.external_write_mode(file=sys.stderr):
                click.echo(line, err=True)
        else:
            click.echo(line, err=True)

    def notice(self, message: str) -> None:
        if not self.quiet:
            self._echo(f"streamtag: {message}")

    def warning(self, message: str) -> None:
        self._echo(f"streamtag: warning: {message}")

    def error(self, message: str) -> None:
        self._echo(f"streamtag: error: {message}")

    def progress(self, line: str) -> None:
        if not self.quiet:
            self._echo(f"streamtag: {self.prefix}{line}")

    def progress_bar(self, label: str, duration_s: float | None, windows: int | None) -> "_Bar | None":
        return _Bar(label, duration_s, windows) if self.show_progress else None

    def text_output(self, stream):
        return _BarSafeStream(stream) if self.show_progress else stream


class _Bar:
    """A tqdm line on stderr: file, %, windows done, windows/s, ETA and times real time (a stream of unknown
    length: windows done and windows/s)."""

    def __init__(self, label: str, duration_s: float | None, windows: int | None) -> None:
        from tqdm import tqdm
        self.duration_s, self.t0 = duration_s, time.monotonic()
        try:
            width = os.get_terminal_size(sys.stderr.fileno()).columns
        except (OSError, ValueError):  # not a terminal (--progress)
            width = 0
        size = {} if width else {"ncols": 100, "nrows": 24}  # a terminal of unknown size would hide the line
        self.bar = tqdm(total=windows, desc=label, unit="win", file=sys.stderr, leave=False, mininterval=0.2,
                        dynamic_ncols=bool(width), **size)

    def update(self, n: int) -> None:
        self.bar.update(n)
        elapsed = time.monotonic() - self.t0
        if elapsed > 0 and self.bar.total:
            self.bar.set_postfix_str(f"{self.duration_s * self.bar.n / self.bar.total / elapsed:.0f}x real time",
                                     refresh=False)

    def close(self) -> None:
        self.bar.close()


class _BarSafeStream:
    """Standard output for result rows while a progress line is shown: each write clears and redraws the line."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        from tqdm import tqdm
        with tqdm.external_write_mode(file=self.stream):
            n = self.stream.write(text)
            self.stream.flush()
        return n

    def flush(self) -> None:
        self.stream.flush()
