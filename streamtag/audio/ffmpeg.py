"""FFmpeg-backed sources on PyAV: containers libsndfile does not read (M4A/AAC/ALAC, MP4/MKV/WebM/MOV
soundtracks, ...) and network inputs (HTTP files and streams, RTSP); the only module that imports `av`.

Audio is decoded packet by packet at its native rate and goes through the same downmix and streaming
resampler as libsndfile's, so memory stays flat and the samples match the WAV path. Sample positions
come from the frames' timestamps: encoder priming is dropped as FFmpeg reports it, a container's
declared length trims encoder padding, and a jump in timestamps (missing packets) is lost audio, counted.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

import numpy as np

from ..deps import installed_version
from ..errors import AudioReadError, ConfigError, DependencyError
from .capture import CaptureBuffer, capture_start, captured_blocks
from .resample import StreamResampler
from .sources import DecodedSource, Gap, as_float_samples, check_shard

EXTRA = "pip install 'streamtag[ffmpeg]'"
NETWORK_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp")
TRUSTED_LENGTH_FORMATS = ("mov", "mp4", "matroska", "webm", "wav")  # containers whose header states the length
LENGTH_SLACK_S = 0.1  # a declared length this much longer than the audio decoded means a truncated file


def ffmpeg_available() -> bool:
    """Whether PyAV (`av`, the `[ffmpeg]` extra) is installed (without importing it)."""
    return installed_version("av") is not None


def _av():
    try:
        import av
    except ImportError as e:
        raise DependencyError(f"reading this input needs FFmpeg through PyAV ({e}): {EXTRA}") from None
    return av


def is_url(path: str | os.PathLike) -> bool:
    """Whether `path` is a network input (http(s)://, rtsp(s)://, rtmp://) rather than a file."""
    scheme, sep, _ = os.fspath(path).partition("://")
    return bool(sep) and scheme.lower() in NETWORK_SCHEMES


def _reason(e: BaseException) -> str:
    """An error's message in one line (FFmpeg's own words, without its errno)."""
    text = " ".join(str(getattr(e, "strerror", None) or e).split())
    return text or type(e).__name__


@dataclass(frozen=True)
class StreamInfo:
    """What a probe of an input found: its audio stream's rate, channels, length and recorded time."""

    sample_rate: int
    channels: int
    frames: int | None  # native frames the container declares, None when it does not say
    exact_length: bool  # the declared length is sample-exact (trim the decoder's padding to it)
    trusted_length: bool  # a shorter stream than declared means truncation
    creation_time: str | None  # the container's creation_time tag, as written


def open_container(url: str, timeout_s: float = 10.0):
    """An open PyAV input container, or AudioReadError in one line naming `url`."""
    av = _av()
    try:
        return av.open(url, timeout=timeout_s, metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise AudioReadError(f"{url}: cannot open ({_reason(e)})") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise AudioReadError(f"{url}: cannot open ({_reason(e)})") from None


def audio_stream(container, url: str, index: int | None):
    """The `index`-th audio stream (0 = the first), or AudioReadError/ConfigError naming what there is."""
    streams = container.streams.audio
    if not streams:
        raise AudioReadError(f"{url}: has no audio stream")
    i = 0 if index is None else int(index)
    if not 0 <= i < len(streams):
        raise ConfigError(f"{url}: has {len(streams)} audio stream(s); --stream takes 0 to {len(streams) - 1}")
    return streams[i]


def probe(container, stream) -> StreamInfo:
    """The facts of `stream` in `container` that a source needs before decoding."""
    ctx = stream.codec_context
    rate = int(ctx.sample_rate or stream.rate or 0)
    if rate <= 0:
        raise AudioReadError(f"{container.name}: its audio stream has no sample rate")
    channels = int(ctx.layout.nb_channels if ctx.layout is not None else ctx.channels)
    fmt = container.format.name.split(",")
    frames = exact = None
    if stream.duration is not None and stream.time_base is not None:
        # imported here: only PyAV's stream times need it, and fractions imports decimal
        from fractions import Fraction

        frames = int(round(stream.duration * stream.time_base * rate))
        exact = stream.time_base == Fraction(1, rate)
    elif container.duration is not None:
        frames = int(round(container.duration * rate / 1_000_000))
    meta = {**dict(container.metadata), **dict(stream.metadata)}
    created = next((v for k, v in meta.items() if k.lower() == "creation_time"), None)
    return StreamInfo(rate, channels, frames, bool(exact), any(f in TRUSTED_LENGTH_FORMATS for f in fmt), created)


def frame_array(frame) -> np.ndarray:
    """A decoded audio frame as float32 [frames, channels] (integer PCM scaled as soundfile scales it)."""
    a = frame.to_ndarray()
    channels = frame.layout.nb_channels
    a = a.T if frame.format.is_planar else a.reshape(-1, channels)
    return as_float_samples(np.ascontiguousarray(a))


class FramePositions:
    """Places decoded frames on the stream's sample grid from their timestamps: yields (position, lost frames)
    where the timestamps jump ahead of the audio so far (missing packets), then (position, the frame's samples)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.origin: int | None = None  # the first frame's timestamp, in samples: the stream's sample 0
        self.position = 0  # frames placed so far, audio and lost
        self._frame = 0  # the last frame's length: missing packets are whole frames of the codec

    def place(self, frame) -> Iterator[tuple[int, np.ndarray | int]]:
        samples = frame_array(frame)
        if frame.pts is not None and frame.time_base is not None:
            at = int(round(frame.pts * frame.time_base * self.rate))
            slack = int(np.ceil(float(frame.time_base) * self.rate)) + 1  # timestamps round to their time base
            if self.origin is None:
                self.origin = at
            missing = at - (self.origin + self.position)
            if missing > slack:
                whole = round(missing / self._frame) * self._frame if self._frame else missing
                missing = whole if whole and abs(whole - missing) <= slack else missing
                self.position += missing
                yield self.position - missing, int(missing)
        if len(samples):
            self._frame = len(samples)
            self.position += len(samples)
            yield self.position - len(samples), samples


class FFmpegSource(DecodedSource):
    """A finite input FFmpeg decodes (a file, or an HTTP file of known length), read packet by packet.

    `stream` picks the audio stream (0 = the first). `start`/`stop` select a shard as for `FileSource`
    (decoding from the start: exact, not seeking). `container`: an open connection to probe (then closed).
    """

    def __init__(self, path: str | os.PathLike, stream: int | None = None, start: int = 0, stop: int | None = None,
                 start_utc: datetime | None = None, timeout_s: float = 10.0, container=None) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.stream_index = stream
        self.timeout_s = timeout_s
        self.start, self.stop = check_shard(self.path, start, stop)
        self.start_utc = start_utc
        container = container if container is not None else open_container(self.path, timeout_s)  # probe, closed
        try:
            chosen = audio_stream(container, self.path, stream)
            self.info = probe(container, chosen)
            _first_frame(container, chosen, self.path)
        finally:
            container.close()
        self.sample_rate, self.channels = self.info.sample_rate, self.info.channels
        self.frames = self.info.frames or 0
        if self.info.frames == 0:
            raise AudioReadError(f"{self.path}: contains no audio frames")

    def length(self, rate: int) -> int | None:
        """Samples of the selected part at `rate` from the declared length; None when the container does not say."""
        return None if self.info.frames is None else super().length(rate)

    def _decode(self, first_frame: int) -> Iterator[np.ndarray | int]:
        av = _av()
        self.closing = False
        container = open_container(self.path, self.timeout_s)
        grid = FramePositions(self.sample_rate)
        end = self.info.frames if self.info.exact_length else None  # drop the encoder's padding past it
        try:
            stream = audio_stream(container, self.path, self.stream_index)
            for packet in container.demux(stream):
                if self.closing:
                    return
                for frame in packet.decode():
                    for at, item in grid.place(frame):
                        item = _cut(item, at, first_frame, end)
                        if item is not None:
                            yield item
                if end is not None and grid.position >= end:
                    return
        except av.error.FFmpegError as e:
            raise AudioReadError(f"{self.path}: cannot decode at {grid.position / self.sample_rate:.2f} s "
                                 f"({_reason(e)})") from None
        finally:
            container.close()

    def _check_end(self, frames_read: int) -> None:
        declared = self.info.frames
        if declared and self.info.trusted_length and frames_read < declared - LENGTH_SLACK_S * self.sample_rate:
            raise AudioReadError(f"{self.path}: ended at {frames_read / self.sample_rate:.2f} s of "
                                 f"{declared / self.sample_rate:.2f} s (truncated or damaged)")

    def close(self) -> None:
        """Stop decoding at the next packet; safe from any thread."""
        self.closing = True


def _first_frame(container, stream, url: str) -> None:
    """Decode up to the first audio frame: AudioReadError when the codec cannot decode the stream."""
    av = _av()
    try:
        for _ in container.decode(stream):
            return
    except av.error.FFmpegError as e:
        raise AudioReadError(f"{url}: cannot decode its audio ({_reason(e)})") from None


def _cut(item: np.ndarray | int, at: int, first: int, end: int | None) -> np.ndarray | int | None:
    """The part of `item` (audio, or lost frames) placed at frame `at` that lies in [first, end)."""
    n = item if isinstance(item, int) else len(item)
    lo, hi = max(at, first), n + at if end is None else min(n + at, end)
    if hi <= lo:
        return None
    if isinstance(item, int):
        return hi - lo
    return item[lo - at:hi - at]


RECONNECT_BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # then every 8 s


class NetworkStream:
    """A live network input (an HTTP/Icecast stream, RTSP, RTMP) read by its own capture thread.

    Like a microphone it never waits: decoded audio waits in a bounded buffer (`buffer_s`) and, when
    the pipeline falls behind, the oldest becomes a counted gap. A dropped connection is retried up
    to `reconnect` times in a row with backoff; the time without audio is a gap. A server that answers
    a reconnect with 404/410 has ended the stream (a clean end), as has any end with `reconnect=0`
    (standard input); after `reconnect` failed attempts
    `blocks` raises AudioReadError, after every window before it was published. `container`: the first
    connection, already open (a probe's).
    """

    live = True
    overflows = 0

    def __init__(self, url: str, stream: int | None = None, reconnect: int = 5, buffer_s: float = 10.0,
                 timeout_s: float = 10.0, container=None) -> None:
        if reconnect < 0:
            raise ConfigError(f"reconnect must be 0 or more attempts, got {reconnect}")
        self.path = url
        self.stream_index = stream
        self.reconnect = int(reconnect)
        self.timeout_s = timeout_s
        self.nonfinite = 0
        self.start_utc: datetime | None = None  # the capture clock at the first sample
        self.reconnects = 0  # connections re-made after a drop
        self._container = container if container is not None else open_container(url, timeout_s)  # the 1st connection
        try:
            self.info = probe(self._container, audio_stream(self._container, url, stream))
        except BaseException:
            self._container.close()
            raise
        self.sample_rate, self.channels = self.info.sample_rate, self.info.channels
        self._buffer = CaptureBuffer(int(buffer_s * self.sample_rate))
        self._closed = threading.Event()
        self._reader_done = threading.Event()
        self._failure: AudioReadError | None = None

    @property
    def lost_frames(self) -> int:
        """Native frames lost: to a full buffer, missing packets, and time spent reconnecting."""
        return self._buffer.dropped_frames

    def length(self, rate: int) -> None:
        """Unknown: a stream runs until it ends or is stopped."""
        return None

    def blocks(self, rate: int) -> Iterator[np.ndarray | Gap]:
        resampler = StreamResampler(self.sample_rate, rate)
        reader = threading.Thread(target=self._read, name="streamtag-network", daemon=True)
        reader.start()
        while True:
            done = self._reader_done.is_set()
            yield from captured_blocks(self._buffer.take(), resampler, self.sample_rate, rate, self)
            if done:
                break
            self._buffer.wait(0.1)
        tail = resampler.process(np.zeros(0, np.float32), last=True)
        if len(tail):
            yield tail
        if self._failure is not None:
            raise self._failure

    def _read(self) -> None:
        """The capture thread: decode connection after connection until the end, a stop, or too many failures."""
        try:
            container = self._container
            while container is not None and not self._closed.is_set():
                self._capture(container)
                if self._closed.is_set():
                    break
                container = self._reconnect(time.monotonic())
        except Exception as e:  # noqa: BLE001 - reaches the pipeline through blocks()
            self._failure = e if isinstance(e, AudioReadError) else AudioReadError(f"{self.path}: {_reason(e)}")
        finally:
            self._reader_done.set()
            self._buffer.wake()

    def _capture(self, container) -> None:
        """Decode one connection into the buffer until it ends or drops."""
        av = _av()
        grid = FramePositions(self.sample_rate)
        try:
            stream = audio_stream(container, self.path, self.stream_index)
            if int(stream.codec_context.sample_rate or 0) != self.sample_rate:
                raise AudioReadError(f"{self.path}: the stream came back at {stream.codec_context.sample_rate} Hz "
                                     f"instead of {self.sample_rate} Hz; start a new run")
            for packet in container.demux(stream):
                if self._closed.is_set():
                    return
                for frame in packet.decode():
                    for _, item in grid.place(frame):
                        if isinstance(item, int):
                            self._buffer.lose(item)
                            continue
                        if self.start_utc is None:
                            self.start_utc = capture_start(len(item), self.sample_rate)
                        self._buffer.put(item)
        except av.error.FFmpegError:
            pass  # a dropped connection: the caller reconnects
        finally:
            container.close()

    def _reconnect(self, dropped_at: float):
        """A new connection after a drop (its missing time recorded as lost), None when the server ended the
        stream or the run was stopped; AudioReadError after `reconnect` failed attempts."""
        av = _av()
        if self.reconnect == 0:
            return None  # reconnecting is off: the stream's end is the end of the run
        last = "the connection ended"
        for attempt in range(self.reconnect):
            if self._closed.wait(RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]):
                return None
            try:
                container = av.open(self.path, timeout=self.timeout_s, metadata_errors="ignore")
            except (av.error.HTTPNotFoundError, av.error.HTTPOtherClientError):
                return None  # 404, 410 (gone) and the like: the server says the stream is over
            except (av.error.FFmpegError, OSError) as e:
                last = _reason(e)
                continue
            self.reconnects += 1
            self._buffer.lose(int(round((time.monotonic() - dropped_at) * self.sample_rate)))
            return container
        raise AudioReadError(f"{self.path}: connection lost and {self.reconnect} reconnect attempt(s) failed ({last})")

    def close(self) -> None:
        """End the capture; what arrived before is still published."""
        self._closed.set()
        self._buffer.wake()


def creation_time(path: str) -> str:
    """The creation time a container's metadata records, as written (MP4/MOV/MKV `creation_time`, WAV BEXT
    origination date and time), or AudioReadError naming the file when it records none."""
    container = open_container(path)
    try:
        meta = {k.lower(): v for k, v in {**dict(container.metadata),
                                          **{k: v for s in container.streams for k, v in s.metadata.items()}}.items()}
    finally:
        container.close()
    text = meta.get("creation_time")
    if text is None and "origination_date" in meta:
        text = f"{meta['origination_date']}T{meta.get('origination_time', '00:00:00').replace('-', ':')}"
    if not text:
        raise AudioReadError(f"{path}: its metadata records no creation time (use --start-time or "
                             f"--start-time-from name:PATTERN)")
    return text
