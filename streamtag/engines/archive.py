"""Engine-independent archive work: expand inputs, split files into shards of whole windows, tag a shard,
and put a file's shards back together in window order."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

import numpy as np

from ..audio.ffmpeg import is_url
from ..audio.inputs import InputOptions, open_audio
from ..errors import AudioReadError, ConfigError
from ..models.labels import Labels
from ..pipeline.result import WindowResult
from ..pipeline.tagger import Tagger
from ..windows import WindowSpec

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".w64", ".rf64",
                    ".caf", ".au", ".snd",  # libsndfile's; FFmpeg's (the [ffmpeg] extra):
                    ".m4a", ".m4b", ".aac", ".alac", ".mp4", ".m4v", ".mov", ".mkv", ".mka", ".webm", ".wma", ".ac3"}
LIST_EXTENSIONS = {".txt", ".lst", ".list"}


def expand_inputs(inputs: list[str | os.PathLike]) -> list[str]:
    """Audio paths from files, folders (recursive, by extension, sorted) and text files listing paths."""
    out: list[str] = []
    for item in inputs:
        if is_url(item):
            out.append(str(item))
            continue
        p = Path(item)
        if p.is_dir():
            out.extend(str(f) for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
        elif p.suffix.lower() in LIST_EXTENSIONS and p.is_file():
            for line in p.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line).expanduser()
                    out.append(str(q if q.is_absolute() else p.parent / q))
        else:
            out.append(str(p))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Shard:
    """Windows [first_window, first_window + windows) of file `file` (index into the input list)."""

    file: int
    path: str
    index: int  # shard number within the file
    first_window: int
    windows: int
    last: bool  # the file's last shard

    def samples(self, spec: WindowSpec) -> tuple[int, int]:
        """Model-rate samples [start, stop) the shard's windows cover (stop may pass the file's end)."""
        return spec.start(self.first_window), spec.end(self.first_window + self.windows - 1)


def count_windows(path: str, spec: WindowSpec, options: InputOptions = InputOptions()) -> tuple[int, float]:
    """Windows of a file under the window rule, and its length in seconds, from its header (raises
    AudioReadError if unreadable or of unknown length)."""
    source = open_audio(path, options)
    try:
        length = source.length(spec.rate)
        if length is None:
            raise AudioReadError(f"{path}: its container does not state its length, which sharding needs: "
                                 f"tag it with the local engine")
        return spec.total(length), length / spec.rate
    finally:
        source.close()


def plan_shards(file: int, path: str, total_windows: int, shard_windows: int) -> list[Shard]:
    """Split a file's windows into shards of at most `shard_windows` whole windows."""
    if shard_windows < 1:
        raise ConfigError(f"shard size must be at least 1 window, got {shard_windows}")
    starts = range(0, total_windows, shard_windows)
    return [Shard(file, path, j, k0, min(shard_windows, total_windows - k0), k0 + shard_windows >= total_windows)
            for j, k0 in enumerate(starts)]


def tag_shard(tagger: Tagger, shard: Shard, options: InputOptions = InputOptions()) -> bytes:
    """Run the pipeline on one shard; its arrays (window order), packed as an npz."""
    start, stop = shard.samples(tagger.window)
    results = list(tagger.iter_source(open_audio(shard.path, options, start=start,
                                                 stop=None if shard.last else stop)))
    if len(results) != shard.windows and not (shard.last and results):
        raise ConfigError(f"{shard.path}: shard {shard.index} gave {len(results)} windows, expected {shard.windows}")
    arrays = {"embeddings": np.stack([r.embedding for r in results]),
              "lost_samples": np.array([r.lost_samples for r in results], np.int64)}
    if results[0].scores is not None:
        arrays["scores"] = np.stack([r.scores for r in results])
    if results[0].frames is not None:
        arrays["frames"] = np.stack([r.frames for r in results])
        arrays["frame_offsets"] = results[0].frame_times - results[0].start_s
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def shard_results(payloads: list[bytes], shards: list[Shard], spec: WindowSpec, labels: Labels,
                  model_name: str, start_utc: datetime | None = None) -> Iterator[WindowResult]:
    """A file's WindowResults in order, from its shards' packed arrays (shards in order); `start_utc`: the
    file's wall-clock start."""
    k = 0
    for shard, payload in zip(shards, payloads):
        with np.load(io.BytesIO(payload)) as z:
            arrays = {name: z[name] for name in z.files}
        if shard.first_window != k:
            raise ConfigError(f"{shard.path}: shard {shard.index} starts at window {shard.first_window}, expected {k}")
        offsets = arrays.get("frame_offsets")
        for j in range(len(arrays["embeddings"])):
            start_s, end_s = spec.times(k)
            yield WindowResult(
                index=k, start_sample=spec.start(k), end_sample=spec.end(k), start_s=start_s, end_s=end_s,
                scores=arrays["scores"][j] if "scores" in arrays else None, embedding=arrays["embeddings"][j],
                model=model_name, labels=labels, lost_samples=int(arrays["lost_samples"][j]),
                frames=arrays["frames"][j] if "frames" in arrays else None,
                frame_times=None if offsets is None else start_s + offsets, stream_start_utc=start_utc)
            k += 1
