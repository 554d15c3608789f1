"""A refreshing terminal view of live results: the top tags with score bars."""
from __future__ import annotations

from typing import IO

from ..pipeline.result import WindowResult
from .sinks import TagFilter

BAR = 30


class LiveView:
    """Redraws the top-k tags of the newest window in place (for a terminal)."""

    def __init__(self, out: IO[str], tags: TagFilter | None = None, title: str = "") -> None:
        self.out, self.tags, self.title = out, tags or TagFilter(), title
        self.lossy = 0

    def render(self, r: WindowResult) -> str:
        # times first: "window 5" read as a 5 s window
        lines = [f"{self.title}  {r.start_s:.1f}-{r.end_s:.1f} s  (#{r.index}, {r.end_s - r.start_s:g} s window)"]
        for i in (self.tags.pick(r.scores) if r.scores is not None else []):
            name, score = r.labels.names[i], float(r.scores[i])
            lines.append(f"  {name[:32]:<32} {'#' * int(round(score * BAR)):<{BAR}} {score:.2f}")
        if r.latency_s is not None:
            lines.append(f"  latency {r.latency_s * 1e3:.0f} ms")
        if self.lossy:
            lines.append(f"  {self.lossy} window(s) with lost audio")
        return "\n".join(lines)

    def __call__(self, r: WindowResult) -> None:
        self.lossy += r.lost_samples > 0
        self.out.write("\x1b[H\x1b[J" + self.render(r) + "\n")  # home, clear to end of screen
        self.out.flush()

    def close(self) -> None:
        self.out.flush()
