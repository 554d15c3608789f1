"""Live capture from an input device; the only module that imports sounddevice (PortAudio)."""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Iterator

import numpy as np

from ..errors import AudioDeviceError, ConfigError
from .capture import CaptureBuffer, capture_start, captured_blocks
from .resample import StreamResampler
from .sources import Gap


def _sounddevice():
    try:
        import sounddevice
    except (ImportError, OSError) as e:
        raise AudioDeviceError(f"live capture needs PortAudio (Debian: apt install libportaudio2): {e}") from None
    return sounddevice


def input_devices() -> list[dict]:
    """Input devices: index, name, channels, default rate, host API."""
    sd = _sounddevice()
    apis = sd.query_hostapis()
    return [{"index": i, "name": d["name"], "channels": int(d["max_input_channels"]),
             "default_samplerate": float(d["default_samplerate"]), "hostapi": apis[d["hostapi"]]["name"]}
            for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]


def find_input(device: int | str | None) -> dict:
    """An input device by index, by name substring (case-insensitive), or the default one."""
    devices = input_devices()
    if not devices:
        raise AudioDeviceError("no audio input device found")
    if device is None:
        sd = _sounddevice()
        default = sd.default.device[0]
        match = [d for d in devices if d["index"] == default]
        return match[0] if match else devices[0]
    if isinstance(device, int) or str(device).isdigit():
        match = [d for d in devices if d["index"] == int(device)]
    else:
        match = [d for d in devices if str(device).lower() in d["name"].lower()]
        exact = [d for d in match if d["name"].lower() == str(device).lower()]
        match = exact or match
    if not match:
        names = ", ".join(f"{d['index']}: {d['name']}" for d in devices)
        raise ConfigError(f"no input device matches {device!r} (inputs: {names})")
    return match[0]


class MicrophoneSource:
    """Captures an input device at its native rate; the audio callback only copies blocks.

    Blocks wait in a bounded in-memory queue (`buffer_s`); downmixing and resampling happen
    on the pipeline's source thread. Audio lost to a device overflow (estimated from the
    device's ADC timestamps) or to a full queue is replaced by a `Gap` of the same length,
    so timestamps stay true and the affected windows are marked.
    """

    on_native = None  # set by the pipeline: each captured block at the source rate, before resampling
    native_position = 0

    live = True

    def __init__(self, device: int | str | None = None, channels: int | None = None,
                 sample_rate: float | None = None, block_s: float = 0.02, buffer_s: float = 10.0) -> None:
        info = find_input(device)
        self.device = info
        self.sample_rate = int(sample_rate or info["default_samplerate"])
        self.channels = int(channels or min(2, info["channels"]))
        self.block_frames = max(1, int(block_s * self.sample_rate))
        self.overflows = 0  # device-reported input overflows
        self.nonfinite = 0  # NaN/Inf samples replaced by 0 (a float device can deliver them)
        self.start_utc: datetime | None = None  # the capture clock at the first sample, set when it arrives
        self._buffer = CaptureBuffer(int(buffer_s * self.sample_rate))
        self._closed = threading.Event()
        self._next_adc: float | None = None

    @property
    def dropped_frames(self) -> int:
        """Frames lost to overflows or a full buffer (device rate)."""
        return self._buffer.dropped_frames

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread: copy only
        block = indata.copy()
        if self.start_utc is None:
            self.start_utc = capture_start(frames, self.sample_rate)
        adc = getattr(time_info, "inputBufferAdcTime", 0.0) or 0.0
        if status.input_overflow:
            self.overflows += 1
            if self._next_adc is not None and adc > self._next_adc:
                self._buffer.lose(int(round((adc - self._next_adc) * self.sample_rate)))
        self._next_adc = adc + frames / self.sample_rate if adc else None
        self._buffer.put(block)

    def length(self, rate: int) -> None:
        """Unknown: capture runs until stopped."""
        return None

    def blocks(self, rate: int) -> Iterator[np.ndarray | Gap]:
        sd = _sounddevice()
        resampler = StreamResampler(self.sample_rate, rate)
        failed: list[str] = []
        try:
            stream = sd.InputStream(device=self.device["index"], channels=self.channels,
                                    samplerate=self.sample_rate, blocksize=self.block_frames, dtype="float32",
                                    callback=self._callback)
        except Exception as e:
            raise AudioDeviceError(f"cannot open input {self.device['name']!r}: {e}") from None
        with stream:
            while not self._closed.is_set():
                self._buffer.wait(0.1)
                yield from captured_blocks(self._buffer.take(), resampler, self.sample_rate, rate, self)
                if not stream.active and not self._closed.is_set():
                    failed.append("the input device stopped delivering audio (disconnected?)")
                    break
        yield from captured_blocks(self._buffer.take(), resampler, self.sample_rate, rate, self)  # before the stop
        tail = resampler.process(np.zeros(0, np.float32), last=True)
        if len(tail):
            yield tail
        if failed:
            raise AudioDeviceError(f"{self.device['name']}: {failed[0]}")

    def close(self) -> None:
        """End the capture; the stream's last windows are still published."""
        self._closed.set()
        self._buffer.wake()
