"""The exceptions streamtag raises: one base class, one subclass per kind of failure."""
from __future__ import annotations


class StreamtagError(Exception):
    """Base class of every error streamtag raises on purpose; its message is one readable line."""


class ConfigError(StreamtagError, ValueError):
    """An argument is out of range or inconsistent (window, hop, batch size, device...)."""


class AudioReadError(StreamtagError):
    """An audio file or stream cannot be read: missing, empty, corrupt or unsupported."""


class AudioDeviceError(StreamtagError):
    """A live input device cannot be opened or stopped delivering audio."""


class UnknownModelError(StreamtagError, KeyError):
    """A model name is not in the registry."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class WeightsError(StreamtagError):
    """A checkpoint cannot be used: wrong hash, corrupt file, or keys/shapes that do not fit."""


class WeightsUnavailableError(WeightsError):
    """Weights are neither given, cached, bundled nor downloadable; the message says what to fetch."""


class LabelsError(StreamtagError):
    """The AudioSet label file is missing or malformed."""


class DependencyError(StreamtagError, ImportError):
    """A package streamtag needs is missing or cannot load (torch); the message names the command that fixes it."""


class PipelineError(StreamtagError):
    """The streaming pipeline stopped because one of its threads failed."""


class OutputError(StreamtagError):
    """An output cannot be written (full disk, no permission, read-only folder, closed pipe); names the file."""

    closed_pipe: bool = False  # the reader of a pipe went away (`| head`): not a failure to a Unix tool

    @classmethod
    def writing(cls, path: object, error: BaseException) -> "OutputError":
        """The error for `error` (an OSError, usually) raised while writing `path`."""
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        made = cls(f"cannot write {path}: {reason}")
        made.closed_pipe = isinstance(error, BrokenPipeError)
        return made


class SignalInterrupt(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C's KeyboardInterrupt (see `interrupts_from_signals`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
