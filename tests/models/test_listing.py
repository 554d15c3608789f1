"""`streamtag models`' table: every column lines up with its header, for one row as for all of them."""
from __future__ import annotations

import re

import pytest

from streamtag.models import MODELS
from streamtag.models.listing import model_rows, table_lines

RIGHT = {"params", "emb", "rate", "mAP"}


def cells(line: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of each cell: cells are separated by two or more spaces."""
    return [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", line)]


@pytest.mark.parametrize("pattern", ["mn10_as", "mn04_as", "dymn20_as", "eat_large_epoch20_as2m", "mn0", "*"])
def test_every_row_lines_up_with_the_header(pattern):
    rows = model_rows(pattern)
    lines = table_lines(rows)
    header = cells(lines[0])
    assert [h[2] for h in header] == ["name", "family", "params", "emb", "rate", "mAP", "scores", "offline", "license"]
    for line, row in zip(lines[1:], rows):
        got = cells(line)
        assert len(got) == len(header), line
        for (hs, he, name), (cs, ce, _) in zip(header, got):
            assert (he == ce) if name in RIGHT else (hs == cs), f"{name} misaligned in {line!r}"
        assert got[0][2] == row["name"] + (" *" if row["default"] else "")


def test_the_table_lists_what_the_registry_holds_and_tells_how_to_fetch_a_missing_one(isolated_home):
    assert [r["name"] for r in model_rows()] == list(MODELS)
    lines = table_lines(model_rows("mn10_as"))
    assert lines[2].startswith("* the default model")
    assert lines[3].startswith("to use mn10_as offline: streamtag download mn10_as (or download ")
    assert lines[3].endswith(f"save it as {isolated_home / 'mn10_as_mAP_471.pt'})")
    assert model_rows("mn04_as")[0]["local"] == "bundled"
