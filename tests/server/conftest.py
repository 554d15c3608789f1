"""Servers for the serve tests: real sources (files at real time), real sockets on 127.0.0.1 and a free port."""
from __future__ import annotations

import contextlib
import json

import pytest

from streamtag.models.loader import ModelChoice, RunTarget
from streamtag.server.app import Server
from streamtag.server.config import NetworkOptions, ServeConfig, SourceConfig
from tests.helpers import LABELS_CSV, MN04_WEIGHTS

MN04 = ModelChoice.parse("mn04_as", MN04_WEIGHTS)
CPU = RunTarget(device="cpu")


async def sse_messages(response):
    """(event, data) of each message of a server-sent events response, as they arrive."""
    kind = None
    async for line in response.content:
        line = line.decode().strip()
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, json.loads(line[6:])


def source(path, name, **kw) -> SourceConfig:
    kw.setdefault("realtime", True)
    return SourceConfig(str(path), name=name, model=MN04, **kw)


@contextlib.contextmanager
def running(*sources: SourceConfig, start_sources: bool = True, **kw):
    """A started server (its sources started too unless `start_sources` is False: `server.start_sources()`)."""
    kw.setdefault("port", 0)
    config = ServeConfig(tuple(sources), NetworkOptions(**kw), labels=str(LABELS_CSV), target=CPU)
    server = Server(config).start(start_sources)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def serve():
    return running
