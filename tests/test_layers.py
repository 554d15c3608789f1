"""The package's shape, checked from its source: one-way layers, no import circle, no probing, no test hooks."""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "streamtag"
# ARCHITECTURE.md: each layer imports only layers to its left (the shared helpers are below every layer)
LAYERS = ["audio", "windows|memory", "models", "pipeline", "outputs|server|remote|index",
          "engines|cli|bench|console|__main__|__init__"]
SHARED = {"errors", "deps", "threads", "notices", "assets", "_version"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    top = module.split(".")[1] if "." in module else "__init__"
    if top in SHARED:
        return None
    return next(i for i, names in enumerate(LAYERS) if top in names.split("|"))


def imports(path: Path) -> set[str]:
    """streamtag modules imported by a file, at any depth, those under `if TYPE_CHECKING:` included (a type-only
    import is still a dependency: it must flow one way and close no circle)."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found = set()

    def visit(node):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                          or (PACKAGE.parent / candidate.replace(".", "/")).is_dir() else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(tree)
    return {m for m in found if m == "streamtag" or m.startswith("streamtag.")}


FILES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {module_name(f): imports(f) for f in FILES}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_flow_one_way(module):
    mine = layer_of(module)
    for target in GRAPH[module]:
        theirs = layer_of(target)
        if mine is None:  # shared helpers import nothing with a layer (the lazy __init__ maps names only)
            assert theirs is None, f"{module} imports {target}"
        elif theirs is not None:
            assert theirs <= mine, f"{module} (layer {LAYERS[mine]}) imports {target} (layer {LAYERS[theirs]})"


def test_no_import_circle():
    def resolve(target):  # `from .x import y` of a package lands on its __init__
        return target if target in GRAPH else target.rsplit(".", 1)[0]
    edges = {m: {resolve(t) for t in ts if resolve(t) in GRAPH and resolve(t) != m} for m, ts in GRAPH.items()}
    state: dict[str, int] = {}

    def walk(m, path):
        state[m] = 1
        for t in edges[m]:
            if t.startswith(m + "."):  # a package importing its own submodules is not a circle
                continue
            if state.get(t) == 1 and not m.startswith(t + "."):
                raise AssertionError("import circle: " + " -> ".join(path[path.index(t):] + [t]))
            if t not in state:
                walk(t, path + [t])
        state[m] = 2
    for m in sorted(edges):
        if m not in state:
            walk(m, [m])


@pytest.mark.parametrize("layer", ["pipeline", "engines"])
def test_no_capability_probing(layer):
    for f in (PACKAGE / layer).rglob("*.py"):
        assert not re.search(r"\b(getattr|hasattr)\(", f.read_text()), f"{f.name} probes with getattr/hasattr"


def test_no_test_hooks_in_the_package():
    for f in FILES:
        text = f.read_text()
        exits = text.count("os._exit(") - (f.parent.name == "cli" and "def exit_interrupted" in text)
        assert exits == 0 and "STREAMTAG_TEST" not in text and "hidden=True" not in text, f.name


def _ten_minutes(folder: Path) -> Path:
    import numpy as np
    import soundfile as sf
    path = folder / "ten_minutes.wav"
    noise = np.random.default_rng(0).standard_normal(16000 * 600).astype(np.float32) * 0.05
    sf.write(path, noise, 16000, subtype="PCM_16")
    return path


@pytest.mark.parametrize("what, window, hop", [("demo", 10.0, 2.5), ("ten minutes", 1.0, 0.5)])
def test_tagging_with_a_cached_export_imports_no_torch(tmp_path, what, window, hop):
    """`streamtag tag` with its export cached imports no torch, nor OpenVINO's converter, nor what other commands or
    extras need (plots, Ray, the microphone, FFmpeg, ONNX Runtime): the demo clip at 10 s windows, and ten minutes
    at 1 s / 0.5 s (one CPU path: no length or window rule sends a run to torch)."""
    import subprocess
    import sys

    from streamtag import Tagger
    from tests.helpers import DEMO_CLIP
    clip = DEMO_CLIP if what == "demo" else _ten_minutes(tmp_path)
    Tagger("mn04_as", window, hop, device="cpu").warm_up()  # the export for these windows, made now if missing
    code = ("import sys\nsys.argv = ['streamtag', 'tag', *sys.argv[1:], '-q']\nfrom streamtag.console import run\n"
            "try:\n    run()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "heavy = {'torch', 'matplotlib', 'ray', 'sounddevice', 'av', 'onnxruntime', 'onnx'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith('openvino.tools')))")
    res = subprocess.run([sys.executable, "-c", code, str(clip), "--model", "mn04_as", "--window", str(window),
                          "--hop", str(hop)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1 + (2 if what == "demo" else 1199) + 1, lines[:3]
    assert lines[-1] == "[]", lines[-1]
    if what == "demo":
        assert "Dog" in res.stdout
