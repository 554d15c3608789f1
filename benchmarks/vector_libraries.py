"""Measure vector libraries for the embeddings index (issue #37): one library per process.

For N unit vectors of DIM dimensions (clustered like real embeddings, or uniformly random) it
reports build time, peak RSS while building, top-100 cosine query p50/p95 (one query at a time),
recall@100 against exact search and the install size of the library and its dependencies
(numpy excluded: streamtag needs it anyway).  Results are appended as JSON lines.

    python benchmarks/vector_libraries.py truth --dim 384            # exact top-100, cached
    python benchmarks/vector_libraries.py run usearch --dim 384      # one library
    python benchmarks/vector_libraries.py table results.jsonl        # markdown table

Data are generated chunk by chunk from a seed, so the benchmark itself never holds the whole
set: the RSS measured is the library's.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import psutil

CHUNK = 50_000
K = 100
CACHE = Path(os.environ.get("VECBENCH_CACHE", Path(tempfile.gettempdir()) / "vecbench"))


def _centres(dim: int, n_clusters: int) -> np.ndarray:
    rng = np.random.default_rng(1234 + dim)
    c = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def chunk_vectors(dim: int, start: int, count: int, data: str, seed: int = 0) -> np.ndarray:
    """Vectors [start, start+count) of the data set: unit vectors, deterministic per chunk."""
    rng = np.random.default_rng([seed, dim, start, 0 if data == "random" else 1])
    x = rng.standard_normal((count, dim)).astype(np.float32)
    if data == "clustered":
        # 2000 clusters (sound classes x recordings), each point its centre plus isotropic
        # noise; cosine to its own centre is about 0.7, like windows of one source.
        centres = _centres(dim, 2000)
        labels = rng.integers(0, len(centres), count)
        x = centres[labels] + x * (1.0 / np.sqrt(dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def chunks(dim: int, n: int, data: str) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, n, CHUNK):
        yield start, chunk_vectors(dim, start, min(CHUNK, n - start), data)


def queries(dim: int, count: int, data: str) -> np.ndarray:
    return chunk_vectors(dim, 10**9, count, data, seed=1)


def truth_path(dim: int, n: int, data: str, nq: int) -> Path:
    return CACHE / f"truth_{data}_{dim}_{n}_{nq}.npy"


def exact_truth(dim: int, n: int, data: str, nq: int) -> np.ndarray:
    """Exact top-K ids for the queries, streaming over the chunks (cached on disk)."""
    path = truth_path(dim, n, data, nq)
    if path.exists():
        return np.load(path)
    q = queries(dim, nq, data)
    best_s = np.full((nq, K), -np.inf, dtype=np.float32)
    best_i = np.zeros((nq, K), dtype=np.int64)
    for start, x in chunks(dim, n, data):
        s = q @ x.T
        ids = np.broadcast_to(np.arange(start, start + len(x)), s.shape)
        all_s = np.concatenate([best_s, s], axis=1)
        all_i = np.concatenate([best_i, ids], axis=1)
        top = np.argpartition(-all_s, K - 1, axis=1)[:, :K]
        best_s = np.take_along_axis(all_s, top, 1)
        best_i = np.take_along_axis(all_i, top, 1)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, best_i)
    return best_i


class PeakRss:
    """Samples this process's RSS every 0.2 s while active."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def install_mb(dist: str, seen: set[str] | None = None) -> float:
    """Installed size of a distribution and its (recursive) requirements, numpy excluded."""
    seen = set() if seen is None else seen
    key = re.sub(r"[-_.]+", "-", dist).lower()
    if key in seen or key == "numpy":
        return 0.0
    seen.add(key)
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError:
        return 0.0
    total = sum((f.size or 0) for f in (d.files or []))
    for req in d.requires or []:
        if "extra ==" in req:
            continue
        name = re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0]
        total += install_mb(name, seen) * 1e6
    return total / 1e6


# ---- one adapter per library: build(dim, n, data, workdir) -> search(q, k, setting) -> ids


def build_usearch(dim: int, n: int, data: str, work: Path) -> tuple[Callable, list]:
    from usearch.index import Index

    index = Index(ndim=dim, metric="cos", dtype="f32", connectivity=16, expansion_add=128)
    for start, x in chunks(dim, n, data):
        index.add(np.arange(start, start + len(x)), x, threads=2)
    index.save(str(work / "usearch.index"))

    def search(q: np.ndarray, k: int, ef: int) -> np.ndarray:
        index.expansion_search = ef
        return np.asarray(index.search(q, k, threads=1).keys)

    return search, [64, 128, 256, 512, 1024]


def build_faiss(dim: int, n: int, data: str, work: Path) -> tuple[Callable, list]:
    """faiss IVF-Flat (sqrt(N) lists, k-means on 64 points per list): the build that suits a growing archive."""
    import faiss

    faiss.omp_set_num_threads(2)
    nlist = int(np.sqrt(n))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = np.concatenate([x for _, x in chunks(dim, min(n, 64 * nlist), data)])
    index.train(sample)
    del sample
    for _, x in chunks(dim, n, data):
        index.add(x)
    faiss.write_index(index, str(work / "faiss.index"))

    def search(q: np.ndarray, k: int, nprobe: int) -> np.ndarray:
        faiss.omp_set_num_threads(1)
        index.nprobe = nprobe
        return index.search(q.reshape(1, -1), k)[1][0]

    return search, [8, 16, 32, 64]


def build_sqlite_vec(dim: int, n: int, data: str, work: Path) -> tuple[Callable, list]:
    import apsw  # Python's own sqlite3 here is built without extension loading
    import sqlite_vec

    db = apsw.Connection(str(work / "vec.sqlite"))
    db.enable_load_extension(True)
    db.load_extension(sqlite_vec.loadable_path())
    db.execute(f"create virtual table v using vec0(e float[{dim}] distance_metric=cosine)")
    for start, x in chunks(dim, n, data):
        with db:
            db.executemany(
                "insert into v(rowid, e) values (?, ?)",
                ((start + i, row.tobytes()) for i, row in enumerate(x)),
            )

    def search(q: np.ndarray, k: int, _setting: object) -> np.ndarray:
        rows = db.execute(
            "select rowid from v where e match ? and k = ? order by distance", (q.tobytes(), k)
        ).fetchall()
        return np.array([r[0] for r in rows])

    return search, ["exact"]


def build_lancedb(dim: int, n: int, data: str, work: Path) -> tuple[Callable, list]:
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(str(work / "lance"))
    schema = pa.schema([("id", pa.int64()), ("vector", pa.list_(pa.float32(), dim))])

    def batches() -> Iterator[pa.RecordBatch]:
        for start, x in chunks(dim, n, data):
            vec = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), dim)
            yield pa.RecordBatch.from_arrays([pa.array(np.arange(start, start + len(x))), vec],
                                             schema=schema)

    table = db.create_table("w", pa.RecordBatchReader.from_batches(schema, batches()))
    table.create_index(metric="cosine", vector_column_name="vector", index_type="IVF_HNSW_SQ",
                       num_partitions=max(1, n // 100_000))

    def search(q: np.ndarray, k: int, setting: tuple[int, int]) -> np.ndarray:
        nprobes, ef = setting
        res = (table.search(q, vector_column_name="vector").distance_type("cosine")
               .nprobes(nprobes).ef(ef).limit(k).select(["id", "_distance"]).to_arrow())
        return res["id"].to_numpy()

    return search, [(2, 128), (4, 256), (10, 512)]


LIBRARIES = {
    "usearch": (build_usearch, "usearch"),
    "faiss": (build_faiss, "faiss-cpu"),
    "sqlite-vec": (build_sqlite_vec, "sqlite-vec"),
    "lancedb": (build_lancedb, "lancedb"),
}


def run(lib: str, dim: int, n: int, data: str, nq: int, out: Path) -> None:
    truth = exact_truth(dim, n, data, nq)
    q = queries(dim, nq, data)
    build, dist = LIBRARIES[lib]
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        rss0 = psutil.Process().memory_info().rss
        t0 = time.perf_counter()
        with PeakRss() as rss:
            search, settings = build(dim, n, data, Path(tmp))
        build_s = time.perf_counter() - t0
        disk = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
        for setting in settings:
            search(q[0], K, setting)  # warm up
            lat, recall = [], []
            budget = time.perf_counter() + 120  # an exact scan gets a couple of minutes
            for i in range(nq):
                t = time.perf_counter()
                ids = search(q[i], K, setting)
                lat.append(time.perf_counter() - t)
                recall.append(len(set(ids.tolist()) & set(truth[i].tolist())) / K)
                if time.perf_counter() > budget and i >= 9:
                    break
            row = {
                "library": lib, "version": md.version(dist), "dim": dim, "n": n, "data": data,
                "setting": setting, "build_s": round(build_s, 1),
                "rss_build_mb": round((rss.peak - rss0) / 1e6), "disk_mb": round(disk / 1e6),
                "p50_ms": round(1e3 * float(np.percentile(lat, 50)), 2),
                "p95_ms": round(1e3 * float(np.percentile(lat, 95)), 2),
                "recall100": round(float(np.mean(recall)), 4), "queries": len(lat),
                "install_mb": round(install_mb(dist) + (install_mb("apsw") if lib == "sqlite-vec" else 0), 1),
            }
            print(json.dumps(row), flush=True)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")


def table(path: Path) -> str:
    """Markdown table of the results file, one row per library/dim/data/setting."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    head = ("| library | dims | data | search setting | build s | build RSS MB | disk MB "
            "| p50 ms | p95 ms | recall@100 | install MB |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['library']} {r['version']} | {r['dim']} | {r['data']} | {r['setting']} "
            f"| {r['build_s']} | {r['rss_build_mb']} | {r['disk_mb']} | {r['p50_ms']} "
            f"| {r['p95_ms']} | {r['recall100']} | {r['install_mb']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("truth", "run"):
        p = sub.add_parser(name)
        if name == "run":
            p.add_argument("library", choices=sorted(LIBRARIES))
        p.add_argument("--dim", type=int, default=384)
        p.add_argument("--n", type=int, default=1_000_000)
        p.add_argument("--data", choices=("clustered", "random"), default="clustered")
        p.add_argument("--queries", type=int, default=200)
        p.add_argument("--out", type=Path, default=Path("vector_libraries.jsonl"))
    t = sub.add_parser("table")
    t.add_argument("path", type=Path)
    a = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    if a.cmd == "truth":
        exact_truth(a.dim, a.n, a.data, a.queries)
    elif a.cmd == "run":
        run(a.library, a.dim, a.n, a.data, a.queries, a.out)
    else:
        print(table(a.path))


if __name__ == "__main__":
    main()
