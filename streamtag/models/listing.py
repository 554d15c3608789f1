"""`streamtag models`: the registry as rows (for --json) and as an aligned table, with what to fetch."""
from __future__ import annotations

from typing import Any

from ..errors import StreamtagError
from .catalog import list_models
from .loader import BUNDLED_MODEL, DEFAULT_MODEL
from .weights import find_cached, streamtag_home

DEFAULT_MARK = " *"


def model_rows(pattern: str = "*") -> list[dict[str, Any]]:
    """One plain dict per registered model matching `pattern`: its facts and whether its weights are here."""
    rows = []
    for spec in list_models(pattern):
        try:
            found = find_cached(spec)
            local = found.origin if found else "-"
        except StreamtagError:
            local = "corrupt"
        rows.append({"name": spec.name, "family": spec.family, "params_millions": spec.params_millions,
                     "embedding_dim": spec.embedding_dim, "sample_rate": spec.sample_rate, "mAP": spec.mAP,
                     "scores": spec.has_scores, "frame_dim": spec.frame_dim, "local": local,
                     "file_name": spec.file_name, "url": spec.page or spec.url, "license": spec.license,
                     "default": spec.name == DEFAULT_MODEL, "bundled": spec.name == BUNDLED_MODEL})
    return rows


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The rows as an aligned table (two spaces between columns; each starts where its header does, numbers end
    where theirs ends, however many rows), then a
    note on the default and, for up to three models that are not here, how to fetch each."""
    cells = [[r["name"] + (DEFAULT_MARK if r["default"] else ""), r["family"],
              f"{r['params_millions']:.2f}M" if r["params_millions"] else "-", str(r["embedding_dim"]),
              str(r["sample_rate"]), f"{r['mAP']}" if r["mAP"] else "-", "yes" if r["scores"] else "-",
              r["local"], r["license"]] for r in rows]
    header = ["name", "family", "params", "emb", "rate", "mAP", "scores", "offline", "license"]
    right = {2, 3, 4, 5}  # numbers
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

    def line(cols: list[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths))]
        return "  ".join(parts[:-1] + [cols[-1]]).rstrip()

    out = [line(header), *(line(c) for c in cells)]
    if any(r["default"] for r in rows):
        out.append(f"* the default model (without --model); {BUNDLED_MODEL} is bundled and used while it is not here")
    missing = [r for r in rows if r["local"] == "-"]
    if 0 < len(missing) <= 3:
        for r in missing:
            out.append(f"to use {r['name']} offline: streamtag download {r['name']} (or download {r['url']} and "
                       f"save it as {streamtag_home() / r['file_name']})")
    return out
