"""A picture of a recording: the top labels' scores over time as a heat map, detected events outlined."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .events import Event, window_slice
from .sinks import AtomicFile


def window_tiles(start_s: np.ndarray, end_s: np.ndarray, audio_s: float | None = None) -> np.ndarray:
    """Edges [K + 1] of the time each window stands for, as the event detector uses them: the central
    hop-wide slices, the first from the first window's start, the last to the audio's end (or its own)."""
    start_s, end_s = np.asarray(start_s, np.float64), np.asarray(end_s, np.float64)
    hop = start_s[1] - start_s[0] if len(start_s) > 1 else end_s[0] - start_s[0]
    starts = [window_slice(a, b, hop, k == 0)[0] for k, (a, b) in enumerate(zip(start_s, end_s))]
    edges = np.array([*starts, end_s[-1]])
    if audio_s is not None:
        edges[-1] = max(edges[-2], min(edges[-1], audio_s))
    return edges


def pyplot():
    """matplotlib's pyplot on the Agg backend, or ConfigError naming the extra to install."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'streamtag[plot]'") from None
    return plt


def plot_scores(path: str | os.PathLike, start_s: np.ndarray, end_s: np.ndarray, scores: np.ndarray,
                names: tuple[str, ...], events: list[Event] = (), top: int = 24, title: str = "",
                audio_s: float | None = None) -> None:
    """Write a PNG heat map of the `top` labels (by peak score), one row each, events as outlines.

    Each window is drawn over the time it stands for (`window_tiles`, the same slices as the events),
    as one mesh, so an hour renders in seconds.
    """
    plt = pyplot()
    from matplotlib.patches import Rectangle
    if len(scores) == 0:
        raise ConfigError("nothing to plot: no windows")
    event_labels = [e.label for e in events]
    peak = scores.max(axis=0)
    order = [names.index(n) for n in dict.fromkeys(event_labels)]  # labels with events first
    order += [int(i) for i in np.argsort(-peak) if int(i) not in order]
    rows = order[:top]
    edges = window_tiles(start_s, end_s, audio_s)
    t0, t1 = float(edges[0]), float(edges[-1])
    fig, ax = plt.subplots(figsize=(14, 1.2 + 0.35 * len(rows)), dpi=100)
    im = ax.pcolormesh(edges, np.arange(len(rows) + 1) - 0.5, scores[:, rows].T, cmap="magma", vmin=0, vmax=1,
                       shading="flat")
    ax.set_xlim(t0, t1)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(range(len(rows)), [names[i] for i in rows], fontsize=8)
    for e in events:
        if e.label in (names[i] for i in rows):
            y = [names[i] for i in rows].index(e.label)
            ax.add_patch(Rectangle((e.onset_s, y - 0.45), e.duration_s, 0.9, fill=False, edgecolor="cyan", lw=1))
    span = t1 - t0
    ax.set_xlabel("time (h:mm:ss)" if span >= 3600 else "time (s)")
    if span >= 3600:
        ticks = np.arange(0, span + 1, 600 if span <= 4 * 3600 else 1800)
        ax.set_xticks(t0 + ticks, [f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}" for s in ticks])
    fig.colorbar(im, ax=ax, pad=0.01, label="score")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike) -> None:
    """Write a matplotlib figure atomically, in the format its extension names (PNG by default), and close it."""
    import matplotlib.pyplot as plt
    try:
        with AtomicFile(path, binary=True) as out:
            fig.savefig(out, format=Path(path).suffix[1:].lower() or "png")
    finally:
        plt.close(fig)
