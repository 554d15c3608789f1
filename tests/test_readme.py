"""Every `streamtag` command in the README's (and docs/') code blocks parses: the subcommand exists and each
--option it uses is in that subcommand's --help."""
from __future__ import annotations

import re
import shlex
from functools import cache

import click
import pytest
from click.testing import CliRunner

from streamtag.cli import main
from tests.helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks that are not Python (shell commands and synopses)."""
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S)
            if lang not in ("python", "py")]


def commands(page) -> list[str]:
    """Each `streamtag ...` command in a page's code blocks (continued lines joined, pipes split)."""
    found = []
    for block in code_blocks(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0]  # a trailing comment
            for part in re.split(r"\|\||&&|\|", line):
                part = part.strip()
                if part.startswith("streamtag "):
                    found.append(part)
    return found


@cache
def help_text(sub: str) -> str:
    res = CliRunner().invoke(main, [sub, "--help"], terminal_width=200)
    assert res.exit_code == 0, f"`streamtag {sub} --help` failed: {res.output}"
    return res.output


ALL = [(page.relative_to(ROOT).as_posix(), cmd) for page in PAGES for cmd in commands(page)]


def test_the_readme_shows_commands_for_each_job():
    readme = [cmd for page, cmd in ALL if page == "README.md"]
    subs = {shlex.split(c)[1] for c in readme}
    assert {"tag", "listen", "models", "eval", "bench"} <= subs


@pytest.mark.parametrize("page, command", ALL, ids=[f"{p}:{c[:60]}" for p, c in ALL])
def test_each_command_names_a_subcommand_and_options_it_has(page, command):
    words = shlex.split(command, comments=False)
    sub = words[1]
    assert sub in main.list_commands(click.Context(main)), f"{page}: `{command}`: no subcommand {sub!r}"
    text = help_text(sub)
    for word in words[2:]:
        option = word.strip("[]").split("=")[0]
        if re.fullmatch(r"--[a-z][a-z0-9-]*", option):
            # an option is listed as `--name`, `--name / --no-name` or `--name/--no-name`
            assert re.search(rf"(^|[\s/,]){re.escape(option)}(?![a-z0-9-])", text), \
                f"{page}: `{command}`: `streamtag {sub}` has no option {option}"


def test_the_readme_model_table_states_each_models_registry_facts():
    """mAP, parameters and embedding size in the README's table are the registry's (they are not measured)."""
    from streamtag.models import get_spec
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| model | mAP |"):]
    rows = [line.split("|")[1:6] for line in table[: table.index("\n\n")].splitlines()[2:]]
    assert len(rows) >= 8
    for name, mAP, params, emb, _ in rows:
        spec = get_spec(name.strip().strip("`"))
        assert mAP.strip() == (f"{spec.mAP}" if spec.mAP else "–"), name
        assert abs(float(params.strip().removesuffix(" M")) - spec.params_millions) < 0.051, name
        assert int(emb) == spec.embedding_dim, name


def test_ci_runs_the_readmes_two_set_up_commands_exactly_and_the_static_checks():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    setup = [c for block in code_blocks(readme) for c in block.splitlines() if c.startswith("pip install -e ")]
    assert setup == ["pip install -e . -c constraints.txt && streamtag tag demos/speech_dog_12s.flac",
                     "pip install -e '.[test]' -c constraints.txt && python -m pytest"]
    for command in setup:  # CI adds pip's -q
        assert command in ci.replace("pip install -q ", "pip install "), command
    assert "\nruff check .\n" in ci and "\nmypy\n" in ci and "ruff check ." in readme and "`mypy`" in readme
    # the CPU-only torch line comes before the install command
    assert readme.index("download.pytorch.org/whl/cpu") < readme.index(setup[0])


def test_every_option_of_every_command_says_what_it_does():
    """`--help` of each command has a line of text for each option (listen's --top-k once had none)."""
    bare = []
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        for param in command.params:
            if param.param_type_name == "option" and not (param.help or "").strip():
                bare.append(f"streamtag {name} {param.opts[0]}")
    assert bare == []
