"""Opening what a user names as an input: a file (libsndfile first, FFmpeg for the rest) or a network URL."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from ..errors import AudioReadError, ConfigError
from .ffmpeg import EXTRA, FFmpegSource, NetworkStream, ffmpeg_available, is_url, open_container
from .sources import AudioSource, FileSource, path_problem

__all__ = ["InputOptions", "is_url", "open_audio"]


@dataclass(frozen=True)
class InputOptions:
    """How inputs are read: which audio stream, and for network streams the reconnect attempts, buffer, timeout."""

    stream: int | None = None  # the audio stream of a container (0 = the first); None: the first
    reconnect: int = 5  # attempts in a row after a dropped network stream before giving up
    buffer_s: float = 10.0  # network stream audio kept while inference catches up (older unread audio is lost)
    timeout_s: float = 10.0  # network open/read timeout

    def __post_init__(self) -> None:
        if self.stream is not None and self.stream < 0:
            raise ConfigError(f"--stream takes 0 (the first audio stream) or more, got {self.stream}")
        if self.reconnect < 0:
            raise ConfigError(f"--reconnect takes 0 or more attempts, got {self.reconnect}")
        if not self.buffer_s > 0 or not self.timeout_s > 0:
            raise ConfigError("the buffer and the timeout must be positive")


def open_audio(path: str | os.PathLike, options: InputOptions = InputOptions(), start: int = 0,
               stop: int | None = None, start_utc: datetime | None = None) -> AudioSource:
    """The source for `path`: libsndfile when it reads the file, else FFmpeg; a URL of known length is read like
    a file, any other URL (a stream, RTSP) is live. AudioReadError names the input and, for a file neither
    reads, both reasons; without the `[ffmpeg]` extra it names the extra."""
    name = os.fspath(path)
    if is_url(name):
        return _open_url(name, options, start, stop, start_utc)
    problem = path_problem(name)
    if problem:
        raise AudioReadError(problem)
    if not options.stream:
        try:
            return FileSource(name, start=start, stop=stop, start_utc=start_utc)
        except AudioReadError as e:
            if not ffmpeg_available():
                raise AudioReadError(f"{e}; or install FFmpeg support to read it: {EXTRA}") from None
            libsndfile = str(e).removeprefix(f"{name}: ")
    elif not ffmpeg_available():
        raise AudioReadError(f"{name}: choosing an audio stream needs FFmpeg support: {EXTRA}")
    else:
        libsndfile = None
    try:
        return FFmpegSource(name, options.stream, start, stop, start_utc, options.timeout_s)
    except AudioReadError as e:
        if libsndfile is None:
            raise
        ffmpeg = str(e).removeprefix(f"{name}: ")
        raise AudioReadError(f"{name}: neither libsndfile ({_plain(libsndfile)}) nor FFmpeg ({ffmpeg}) reads it") \
            from None


def _plain(reason: str) -> str:
    """libsndfile's reason without the conversion hint (FFmpeg was tried, so converting is not the fix)."""
    return reason.split("; libsndfile reads")[0]


def _open_url(url: str, options: InputOptions, start: int, stop: int | None,
              start_utc: datetime | None) -> AudioSource:
    if not ffmpeg_available():
        raise AudioReadError(f"{url}: network inputs need FFmpeg support: {EXTRA}")
    container = open_container(url, options.timeout_s)  # a stream's first connection: kept, not made twice
    if url.partition("://")[0].lower() in ("http", "https") and container.duration is not None:
        return FFmpegSource(url, options.stream, start, stop, start_utc, options.timeout_s, container)
    if start or stop is not None:
        container.close()
        raise ConfigError(f"{url}: a live stream cannot be split into shards")
    return NetworkStream(url, options.stream, options.reconnect, options.buffer_s, options.timeout_s, container)
