"""Audio sources: each yields float32 mono blocks at the rate it is asked for."""
from __future__ import annotations

import math
import os
import queue
import shlex
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterator, Protocol

import numpy as np
import soundfile as sf

from ..errors import AudioReadError, ConfigError
from .resample import StreamResampler, expected_length


MAX_CHANNELS = 64  # more "channels" than this is a [channels, frames] array given the other way round


def as_float_samples(samples: object) -> np.ndarray:
    """Audio as float32 [frames] or [frames, channels] in [-1, 1): floats as they are, integer PCM scaled as
    soundfile reads it (int8/16/32/64 by 2**(bits-1), uint8 centred on 128); other dtypes raise ConfigError."""
    x = np.asarray(samples)
    kind = x.dtype.kind
    if kind == "f":
        out = x.astype(np.float32, copy=False)
    elif kind == "i":
        out = (x / float(2 ** (8 * x.dtype.itemsize - 1))).astype(np.float32)
    elif kind == "u" and x.dtype.itemsize == 1:
        out = ((x.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    else:
        raise ConfigError(f"audio samples must be float or integer PCM (int16, int32, uint8, ...), got {x.dtype}")
    if out.ndim not in (1, 2):
        raise ConfigError(f"audio must be [frames] or [frames, channels], got shape {out.shape}")
    if out.ndim == 2 and out.shape[1] > MAX_CHANNELS:
        raise ConfigError(f"audio of shape {out.shape} has {out.shape[1]} channels: pass [frames, channels] "
                          "(a [channels, frames] array transposed: x.T)")
    return out


def downmix(block: np.ndarray) -> np.ndarray:
    """Average channels of a [frames, channels] block in float32, exactly as librosa's to_mono.

    librosa takes np.mean over axis 0 of [channels, frames]: channels are added one after the
    other in float32, then divided by their count. Doing the same column by column gives the
    same bits, several times faster than a strided mean over the last axis. An int16 block is
    16-bit PCM, scaled by 1 / 32768 as soundfile reads it as float32.
    """
    if isinstance(block, np.ndarray) and block.dtype == np.int16:
        if block.ndim == 2 and block.shape[1] <= 256:
            # int16 samples and their running sums over up to 256 channels are exact in float32 (under 2**24), and so
            # are they over 32768, so this equals adding soundfile's float32 samples (x / 32768) one after the other;
            # column by column, 10x faster than an integer sum over the channel axis
            acc = block[:, 0].astype(np.float32)
            for c in range(1, block.shape[1]):
                acc += block[:, c]
            acc *= np.float32(1.0 / 32768.0)
            if block.shape[1] > 1:
                acc /= np.float32(block.shape[1])
            return acc
        block = block.astype(np.float32) * np.float32(1.0 / 32768.0)  # as soundfile reads it, then as below
    x = np.asarray(block, dtype=np.float32)
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise ConfigError(f"audio must be [frames] or [frames, channels], got shape {x.shape}")
    acc = np.array(x[:, 0], dtype=np.float32)
    if x.shape[1] == 1:
        return acc
    for c in range(1, x.shape[1]):
        acc += x[:, c]
    acc /= np.float32(x.shape[1])
    return acc


def replace_nonfinite(x: np.ndarray) -> tuple[np.ndarray, int]:
    """NaN and ±Inf samples become 0 (before resampling, which would smear them); returns the count."""
    bad = ~np.isfinite(x)
    n = int(bad.sum())
    if n:
        x = np.where(bad, np.float32(0), x).astype(np.float32)
    return x, n


EXACT_LENGTH_FORMATS = {"WAV", "WAVEX", "W64", "RF64", "AIFF", "FLAC", "CAF"}


@dataclass(frozen=True)
class Gap:
    """Yielded by a source in place of audio it lost (n samples at the requested rate)."""

    samples: int


NativeHook = Callable[[int, np.ndarray, int], None]


def tell_native(source: object, mono: np.ndarray | None, frames: int) -> None:
    """Hand a block at the source's own rate (mono float32; None for `frames` lost frames) to the source's
    `on_native(position, samples, rate)` hook, when the pipeline set one, and advance `native_position`."""
    hook = getattr(source, "on_native", None)
    if hook is not None and mono is not None and len(mono):
        hook(source.native_position, mono, source.sample_rate)  # type: ignore[attr-defined]
    source.native_position += frames  # type: ignore[attr-defined]


class AudioSource(Protocol):
    """What the pipeline needs from a source, and the loss it counts.

    A source that resamples may also declare `on_native` (None until the pipeline sets it) and `native_position`:
    it then hands each block, before resampling, at its own rate to `on_native(position, samples, rate)`
    (`tell_native`), where position counts the source's frames from the stream's first one (lost frames
    included), so that [position / rate] is the same stream time as the resampled audio's.
    """

    live: bool  # True: never waits (overwrites when behind); False: waits, drops nothing
    overflows: int  # input overflows the device reported (0 for files and arrays)
    nonfinite: int  # NaN/Inf input samples replaced by 0
    start_utc: datetime | None  # wall-clock (UTC) time of the first sample when known: given, read, or captured
    on_native: NativeHook | None  # set by the pipeline (see above); a source that never calls it ignores it

    def blocks(self, rate: int) -> Iterator[np.ndarray | Gap]:
        """Yield float32 mono blocks resampled to `rate` (or a `Gap` for lost audio), until the stream ends."""

    def length(self, rate: int) -> int | None:
        """Samples the stream will hold at `rate` when known before reading (files), else None."""

    def close(self) -> None:
        """Release the underlying device or file; safe to call twice."""


def path_problem(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be an audio file before it is even opened (a directory, nothing there, or 0 bytes), else
    None."""
    if os.path.isdir(path):
        return f"{os.fspath(path)}: is a directory, not an audio file"
    if not os.path.exists(path):
        return f"{os.fspath(path)}: no such file"
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        return f"{os.fspath(path)}: empty file (0 bytes)"
    return None


UNREAD_CONTAINERS = {".m4a": "AAC or ALAC in MP4", ".m4b": "AAC in MP4", ".mp4": "MP4", ".aac": "raw AAC",
                     ".mov": "QuickTime", ".mkv": "Matroska", ".webm": "WebM", ".wma": "Windows Media",
                     ".amr": "AMR", ".ac3": "AC-3"}


def _format_hint(path: str) -> str:
    """What to do with a container libsndfile does not read (empty for others)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in UNREAD_CONTAINERS:
        return ""
    name = os.path.basename(path)
    return (f"; libsndfile reads WAV, FLAC, Ogg/Opus, MP3 and AIFF but not {UNREAD_CONTAINERS[ext]}: convert it "
            f"first, e.g. ffmpeg -i {shlex.quote(name)} {shlex.quote(os.path.splitext(name)[0] + '.flac')}")


SHARD_LEAD_S = 0.25  # resampler lead-in before a shard's first sample (its transient lasts < 0.1 s)


def check_shard(path: str, start: int, stop: int | None) -> tuple[int, int | None]:
    """`(start, stop)` as ints, or ConfigError for an empty or negative shard of `path`."""
    if start < 0 or (stop is not None and stop <= start):
        raise ConfigError(f"bad shard [{start}, {stop}) of {path}")
    return int(start), None if stop is None else int(stop)


class DecodedSource:
    """What a finite decoded source shares: its length, and blocks downmixed, resampled and cut to a shard.

    A subclass sets `path`, `sample_rate`, `channels`, `frames` (native frames in the header), `start`,
    `stop` and `start_utc`, and yields native [n, channels] float32 (or 16-bit PCM int16) blocks, or lost
    native frames as an int, from `_decode(first_frame)`.
    """

    live = False
    overflows = 0  # a file never overflows
    on_native: NativeHook | None = None  # set by the pipeline: each block at the source rate, before resampling
    native_position = 0
    path: str
    sample_rate: int
    channels: int
    frames: int
    start: int
    stop: int | None
    start_utc: datetime | None

    def __init__(self) -> None:
        self.nonfinite = 0  # NaN/Inf samples replaced by 0
        self.lost_frames = 0  # native frames the container's timestamps show missing
        self.closing = False  # close() was asked for: decoding ends early, and that is no error

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    def expected_samples(self, rate: int) -> int:
        """Samples the whole stream holds at `rate` (what the resampler's output is fixed to)."""
        return expected_length(self.frames, self.sample_rate, rate)

    def length(self, rate: int) -> int:
        """Samples of the selected part at `rate`."""
        total = self.expected_samples(rate)
        return max(0, (total if self.stop is None else min(self.stop, total)) - self.start)

    def _decode(self, first_frame: int) -> Iterator[np.ndarray | int]:
        raise NotImplementedError

    def _check_end(self, frames_read: int) -> None:
        """Raise AudioReadError when the stream ended before its header said it would."""

    def blocks(self, rate: int) -> Iterator[np.ndarray | Gap]:
        resampler = StreamResampler(self.sample_rate, rate)
        g = math.gcd(self.sample_rate, rate)
        unit_in, unit_out = self.sample_rate // g, rate // g  # input/output samples that align
        first_in = max(0, self.start - int(SHARD_LEAD_S * rate)) // unit_out * unit_in
        want = None if self.stop is None else self.stop - self.start
        cut = ShardCut(self.start - first_in // unit_in * unit_out, want)
        self.native_position = first_in - int(round(self.start * self.sample_rate / rate))  # 0 at the stream start
        lost = 0
        try:
            for raw in self._decode(first_in):
                if isinstance(raw, int):
                    lost += raw
                    self.lost_frames += raw
                    tell_native(self, None, raw)
                    gap = cut.gap(int(round(raw * rate / self.sample_rate)))
                    if gap:
                        yield Gap(gap)
                else:
                    mono = downmix(raw)
                    if raw.dtype.kind == "f":  # integer PCM is always finite
                        mono, bad = replace_nonfinite(mono)
                        self.nonfinite += bad
                    tell_native(self, mono, len(mono))
                    out = cut.take(resampler.process(mono))
                    if len(out):
                        yield out
                if cut.done:
                    return
            if self.closing:
                return
            if resampler.n_in == 0 and not lost:
                raise AudioReadError(f"{self.path}: contains no audio frames")
            self._check_end(first_in + resampler.n_in + lost)
            tail = cut.take(resampler.process(np.zeros(0, np.float32), last=True))
            if len(tail):
                yield tail
        finally:
            self.close()

    def close(self) -> None:
        raise NotImplementedError


class ShardCut:
    """Drops the first `skip` samples of a stream and ends it after `want` more (None: never)."""

    def __init__(self, skip: int, want: int | None) -> None:
        self.skip, self.want = int(skip), want

    @property
    def done(self) -> bool:
        return self.want == 0

    def take(self, out: np.ndarray) -> np.ndarray:
        """The part of the next block that lies in the shard."""
        out, self.skip = out[self.skip:], max(0, self.skip - len(out))
        if self.want is not None:
            out, self.want = out[:self.want], self.want - min(self.want, len(out))
        return out

    def gap(self, n: int) -> int:
        """The part of a gap of `n` samples that lies in the shard."""
        n, self.skip = max(0, n - self.skip), max(0, self.skip - n)
        if self.want is not None:
            n, self.want = min(n, self.want), self.want - min(n, self.want)
        return n


class FileSource(DecodedSource):
    """Reads an audio file with libsndfile block by block (never whole), downmixes and resamples as it goes.

    `start`/`stop` (samples at the rate asked of `blocks`) select a part of the file's stream: a
    shard. Decoding starts a lead-in earlier, at an input sample that maps onto the output grid,
    and the lead-in is dropped, so a shard's samples equal the whole stream's (to ~2e-7).
    """

    def __init__(self, path: str | os.PathLike, block_frames: int = 1 << 16, start: int = 0,
                 stop: int | None = None, start_utc: datetime | None = None) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.block_frames = int(block_frames)
        self.start, self.stop = check_shard(self.path, start, stop)
        self.start_utc = start_utc
        problem = path_problem(self.path)
        if problem:
            raise AudioReadError(problem)
        try:
            info = sf.info(self.path)
        except Exception as e:  # soundfile raises RuntimeError/LibsndfileError/TypeError
            raise AudioReadError(f"{self.path}: not a readable audio file ({_one_line(e)}){_format_hint(self.path)}") \
                from None
        if info.frames == 0:
            raise AudioReadError(f"{self.path}: contains no audio frames")
        self.sample_rate = int(info.samplerate)
        self.channels = int(info.channels)
        self.frames = int(info.frames)
        self.format = str(info.format)
        self._dtype = "int16" if info.subtype == "PCM_16" else "float32"  # `downmix` takes 16-bit PCM as it is
        self._file: sf.SoundFile | None = None
        self._io = threading.Lock()  # held during each libsndfile call: close() must not free the file under it

    def _decode(self, first_frame: int) -> Iterator[np.ndarray]:
        try:
            with self._io:
                self.closing = False
                self._file = sf.SoundFile(self.path)
            if first_frame:
                self._seek(first_frame)
        except AudioReadError:
            raise
        except Exception as e:
            raise AudioReadError(f"{self.path}: not a readable audio file ({_one_line(e)})") from None
        while True:
            try:
                raw = self._read(self.block_frames)
            except Exception as e:
                raise AudioReadError(f"{self.path}: read failed ({_one_line(e)})") from None
            if raw is None or len(raw) == 0:  # None: closed from another thread, the run is being stopped
                return
            yield raw

    def _check_end(self, frames_read: int) -> None:
        if frames_read < self.frames and self.format in EXACT_LENGTH_FORMATS:
            raise AudioReadError(f"{self.path}: ended after {frames_read} of {self.frames} "
                                 f"frames (truncated or changed while being read)")

    def _read(self, frames: int) -> np.ndarray | None:
        """Up to `frames` frames [n, channels], or None once close() was asked for (the file is then closed)."""
        with self._io:
            if self.closing:
                self._release()
            if self._file is None:
                return None
            return self._file.read(frames, dtype=self._dtype, always_2d=True)

    def _seek(self, frame: int) -> None:
        """Position at `frame`: seek where the format seeks exactly, else decode and discard."""
        with self._io:
            if self._file is not None and self.format in EXACT_LENGTH_FORMATS and self._file.seekable():
                self._file.seek(frame)
                return
        left = frame
        while left > 0:
            raw = self._read(min(left, self.block_frames))
            if raw is None:
                return
            if len(raw) == 0:
                raise AudioReadError(f"{self.path}: ended before frame {frame}")
            left -= len(raw)

    def close(self) -> None:
        """Release the file; safe from any thread, never waits: a read running in another thread closes it after."""
        self.closing = True
        if self._io.acquire(blocking=False):
            try:
                self._release()
            finally:
                self._io.release()

    def _release(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.close()


_END = object()


class ArraySource:
    """A source an application pushes samples into with `feed`, then ends with `end()`.

    Blocks may have any size; the same samples in any block sizes give the same stream.
    `feed` waits while the bounded queue is full (back-pressure) unless the source is live.
    """

    on_native: NativeHook | None = None  # set by the pipeline: the pushed blocks, before resampling
    native_position = 0

    def __init__(self, sample_rate: int | None = None, live: bool = False, max_blocks: int = 64,
                 start_utc: datetime | None = None) -> None:
        self.sample_rate = sample_rate
        self.live = live
        self.start_utc = start_utc  # the application's clock, when it gives one
        self.overflows = 0  # pushed audio has no device to overflow
        self._queue: queue.Queue = queue.Queue(maxsize=max_blocks)
        self._ended = False
        self._closed = threading.Event()
        self.nonfinite = 0  # NaN/Inf samples replaced by 0

    def feed(self, samples: np.ndarray, sample_rate: int | None = None) -> None:
        """Push a block: [frames] mono or [frames, channels]; channels are averaged."""
        if self._ended:
            raise ConfigError("cannot feed after end()")
        if sample_rate is not None:
            if sample_rate <= 0:
                raise ConfigError(f"sample rate must be positive, got {sample_rate}")
            if self.sample_rate is None:
                self.sample_rate = int(sample_rate)
            elif int(sample_rate) != self.sample_rate:
                raise ConfigError(
                    f"sample rate changed mid-stream ({self.sample_rate} -> {sample_rate}); start a new stream")
        if self.sample_rate is None:
            raise ConfigError("the first feed() must give sample_rate")
        mono, bad = replace_nonfinite(downmix(as_float_samples(samples)).copy())
        self.nonfinite += bad
        self._put(mono)

    def end(self) -> None:
        """Declare the end of the stream: the final windows are zero-padded and published."""
        if not self._ended:
            self._ended = True
            self._put(_END)

    def _put(self, item) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if self.live and item is not _END:
                    raise ConfigError("live ArraySource queue is full: the consumer has stopped") from None

    def length(self, rate: int) -> None:
        """Unknown: pushed audio ends when the application says so."""
        return None

    def blocks(self, rate: int) -> Iterator[np.ndarray]:
        resampler: StreamResampler | None = None
        while not self._closed.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                if resampler is not None:
                    tail = resampler.process(np.zeros(0, np.float32), last=True)
                    if len(tail):
                        yield tail
                return
            if resampler is None:
                resampler = StreamResampler(self.sample_rate, rate)
            tell_native(self, item, len(item))
            out = resampler.process(item)
            if len(out):
                yield out

    def close(self) -> None:
        self._closed.set()


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
