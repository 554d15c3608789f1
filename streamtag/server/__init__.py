"""`streamtag serve`: several sources in one process, a dashboard and a network API (the `serve` extra).

A layer beside `outputs`: it imports only downward. `aiohttp` is imported by `server.app` and `remote` only.
"""
from __future__ import annotations

from .config import ServeConfig, SourceConfig

__all__ = ["ServeConfig", "SourceConfig"]
