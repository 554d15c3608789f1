"""Dependencies: a torch that cannot load gives one line with the fix; torchaudio is never imported."""
import os
import subprocess
import sys
import textwrap

import pytest

from streamtag.deps import TESTED_TORCH
from tests.helpers import DEMO_CLIP, ROOT


def fake_package(tmp_path, name, error):
    """A package `name` on PYTHONPATH whose import fails as a broken native build does."""
    pkg = tmp_path / "fake" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"raise OSError({error!r})\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), str(ROOT)])}


def test_the_constraints_pin_the_tested_torch():
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert pins["torch"] == TESTED_TORCH
    assert "torchaudio" not in pins


def test_streamtag_never_imports_torchaudio(tmp_path):
    """A torchaudio that does not fit the installed torch (the 2.11.1-over-2.11.0 case) cannot break anything."""
    env = fake_package(tmp_path, "torchaudio", "libtorchaudio.so: undefined symbol: torch_exception_get_what")
    res = subprocess.run([sys.executable, "-m", "streamtag", "tag", str(DEMO_CLIP), "--device", "cpu"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Dog" in res.stdout and "torchaudio" not in res.stderr


@pytest.mark.parametrize("args", [["tag", str(DEMO_CLIP), "--runtime", "torch"],
                                  ["tag", str(DEMO_CLIP), "--device", "cpu", "--precision", "bf16"]])
def test_a_torch_that_cannot_load_gives_one_line_from_the_cli(tmp_path, args):
    """Whatever needs torch (here: the torch runtime, bf16) says so in one line."""
    env = fake_package(tmp_path, "torch", "libtorch_cpu.so: undefined symbol: _ZN3c10 something")
    res = subprocess.run([sys.executable, "-m", "streamtag", *args], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith("streamtag: error: torch ") and "cannot be loaded (libtorch_cpu.so" in lines[0]
    assert lines[0].endswith(f"pip install --force-reinstall torch=={TESTED_TORCH}")


def test_commands_that_need_no_torch_run_without_it(tmp_path):
    env = fake_package(tmp_path, "torch", "libtorch_cpu.so: undefined symbol: _ZN3c10 something")
    res = subprocess.run([sys.executable, "-m", "streamtag", "models", "mn04*"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "mn04_as" in res.stdout, res.stderr


def test_a_torch_that_cannot_load_is_a_dependency_error_in_python(tmp_path):
    env = fake_package(tmp_path, "torch", "libtorch_cpu.so: undefined symbol: x")
    code = textwrap.dedent("""
        import streamtag                      # loads nothing heavy
        from streamtag import Tagger          # neither does the pipeline
        try:
            Tagger("mn04_as", device="cpu", runtime="torch")
        except streamtag.DependencyError as e:
            assert isinstance(e, ImportError)
            print("DependencyError:", e)
        else:
            raise SystemExit("no error")
    """)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "DependencyError: torch " in res.stdout and "cannot be loaded" in res.stdout


def test_importing_streamtag_loads_no_torch_and_changes_no_environment():
    code = ("import os, sys; before = dict(os.environ); import streamtag; "
            "assert 'torch' not in sys.modules, 'torch imported'; assert dict(os.environ) == before; print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"})
    assert res.stdout.strip() == "ok", res.stderr


def test_tagging_a_file_with_a_local_model_loads_no_network_modules():
    """Start-up: with the weights here and the export cached, `streamtag tag` imports no HTTP, TLS or URL-opening
    modules (only a download needs them) and no fractions/decimal (only PyAV's stream times do)."""
    from streamtag import Tagger
    Tagger("mn04_as", device="cpu").warm_up()  # the demo's export (10 s windows), made now if the cache lacks it
    code = ("import sys\nsys.argv = ['streamtag', 'tag', sys.argv[1], '--model', 'mn04_as', '-q']\n"
            "from streamtag.console import run\ntry:\n    run()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(sorted(m for m in sys.modules if m in {'urllib.request', 'http.client', 'ssl', 'fractions',"
            " 'decimal'}))")
    res = subprocess.run([sys.executable, "-c", code, str(DEMO_CLIP)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Dog" in res.stdout and res.stdout.strip().endswith("[]"), res.stdout


def test_a_command_imports_only_its_own_module():
    """`streamtag tag` loads the tag command's module, not index/search, serve or train's (CommandGroup)."""
    code = ("import sys, click\nfrom streamtag.cli import main\nctx = click.Context(main)\n"
            "assert main.get_command(ctx, 'tag').name == 'tag' and main.get_command(ctx, 'nope') is None\n"
            "print(sorted(m for m in sys.modules if m in {'streamtag.cli.index', 'streamtag.cli.serve',"
            " 'streamtag.cli.train', 'streamtag.index', 'streamtag.server', 'streamtag.cli.tag'}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "['streamtag.cli.tag']", res.stdout
