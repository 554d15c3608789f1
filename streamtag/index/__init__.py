"""The embeddings index: every window's embedding on disk (usearch + SQLite), search by example, review files,
and query-by-example on live streams. Beside `outputs`; imports only the layers below it. The vector library
(the `[search]` extra) is imported when an index is opened, not with this package."""
from .search import (COMBINE, Example, Hit, Index, Query, Reviewed, Segment, embed_examples, example_embeddings,
                     merge_hits, read_review, search, uncertain, window_segments, write_clips, write_segments_audacity,
                     write_segments_csv, write_segments_jsonl, write_segments_raven)
from .live import ExampleEvents, ExampleOptions, Examples, example_settings
from .store import AddReport, IndexFolderError, IndexInfo, IndexMismatch, WindowRow, tagger_for, tagger_info

__all__ = ["COMBINE", "AddReport", "Example", "ExampleEvents", "ExampleOptions", "Examples", "Hit", "Index",
           "IndexFolderError", "IndexInfo", "IndexMismatch", "Query", "Reviewed", "Segment", "WindowRow",
           "embed_examples", "example_embeddings", "example_settings", "merge_hits", "read_review", "search",
           "tagger_for", "tagger_info", "uncertain", "window_segments", "write_clips", "write_segments_audacity",
           "write_segments_csv", "write_segments_jsonl", "write_segments_raven"]
