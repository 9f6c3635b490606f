"""Every command line the README and the `--help` texts show is checked: the cheap ones run
for real (`--help`, `--version`, `score --example`, `geocode`, `data fetch --list`,
`train ... --dry-run`); the expensive ones (train, demo, eval with a model, serve) must name
commands and options that exist, parse with placeholders filled in by the option's type,
and refer to repository files (recipes/...) that exist.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import georeason.commands  # noqa: F401  (registers the subcommands)
from georeason.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ENV = {"HF_HUB_OFFLINE": "1", "COLUMNS": "200", "NO_COLOR": "1"}
# Placeholders as the docs write them: FILE, DIR, N, RECIPE.yaml, EVAL_RUN, ...
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*(\.[a-z]+)?")
REPO_PATH = re.compile(r"(recipes|docs|scripts|tests|benchmarks)/[^\s`'\"]+")


def root_command() -> Any:
    return typer.main.get_command(app)


def all_commands() -> list[tuple[tuple[str, ...], Any]]:
    """(path, command) for the root, every group and every command."""
    out: list[tuple[tuple[str, ...], Any]] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        out.append((path, cmd))
        for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
            walk(sub, (*path, name))

    walk(root_command(), ())
    return out


# --- where the examples are -------------------------------------------------------------


def _segments(text: str) -> list[str]:
    """The georeason command lines in ``text``: from `georeason ` (or `-m georeason.cli `) to
    the end of the shell command (&&, ;, a comment, the end)."""
    found = []
    for m in re.finditer(r"(?:^|[\s`(])(?:-m georeason\.cli|georeason)\s+(?=\S)", text):
        rest = text[m.end() :]
        rest = re.split(r"\s&&\s|;\s|\s#\s|`", rest)[0]
        found.append(("georeason " + rest).strip())
    return found


def readme_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    text = re.sub(r"\\\n\s*", " ", text)  # shell line continuations
    examples: list[str] = []
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S)
    for block in blocks:
        for line in block.splitlines():
            if not line.lstrip().startswith("#"):
                examples += _segments(line)
    inline = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`([^`\n]+)`", inline):
        examples += _segments(span.replace("\\|", "|"))
    return examples


def help_examples() -> list[tuple[str, str]]:
    """(where, example) for every backticked command line in a help text (the command's
    docstring, epilog, or an option's help), and every repository path they name."""
    out: list[tuple[str, str]] = []
    for path, cmd in all_commands():
        texts = [cmd.help or "", getattr(cmd, "epilog", None) or ""]
        texts += [getattr(p, "help", None) or "" for p in cmd.params]
        where = "georeason " + " ".join(path)
        for text in texts:
            for span in re.findall(r"`([^`]+)`", text):
                out += [(where, seg) for seg in _segments(" ".join(span.split()))]
            out += [(where, m.group(0).rstrip(".,;)")) for m in REPO_PATH.finditer(text)]
    return out


# --- checking one example ----------------------------------------------------------------


def tokens_of(example: str) -> list[str]:
    """Shell words, with the docs' notation undone: [optional] parts kept, a|b -> a, '...' dropped."""
    text = example.replace("\\|", "|")
    text = re.sub(r"(?<![\w\"'])\[|\](?![\w\"'])", " ", text)
    words = []
    for word in shlex.split(text):
        word = word.removesuffix("...").removesuffix("…")
        if not word:
            continue
        if "|" in word and "://" not in word:
            word = word.split("|")[0]
        words.append(word)
    return words


def resolve(words: list[str]) -> tuple[tuple[str, ...], Any, list[str], list[str]]:
    """georeason [root options] group command [args] -> (path, command, root options, args)."""
    assert words[0] == "georeason", words
    cmd, path, root_opts = root_command(), [], []
    rest = words[1:]
    while rest and getattr(cmd, "commands", None):
        word = rest[0]
        if word.startswith("-"):
            root_opts.append(rest.pop(0))
            if word in ("--help", "--version"):
                break
            continue
        assert word in cmd.commands, f"no command {' '.join([*path, word])!r} (example: {' '.join(words)})"
        cmd, path = cmd.commands[word], [*path, word]
        rest = rest[1:]
    return tuple(path), cmd, root_opts, rest


def _value_for(param: Any, word: str) -> str:
    """A value of the option's type for a placeholder (``--lat LAT`` -> ``--lat 1.5``)."""
    if not PLACEHOLDER.fullmatch(word):
        return word
    ann = str(getattr(getattr(param, "type_descriptor", None), "annotation", ""))
    ann += str(getattr(getattr(param, "type", None), "name", ""))
    if "int" in ann:
        return "16"
    if "float" in ann:
        return "1.5"
    return word


def fill_placeholders(cmd: Any, args: list[str]) -> list[str]:
    options = {opt: p for p in cmd.params for opt in (*p.opts, *getattr(p, "secondary_opts", []))}
    out, i = [], 0
    while i < len(args):
        word = args[i]
        out.append(word)
        param = options.get(word)
        takes_value = (
            param is not None and not getattr(param, "is_flag", False) and not getattr(param, "count", False)
        )
        if takes_value and i + 1 < len(args):
            out.append(_value_for(param, args[i + 1]))
            i += 1
        i += 1
    return out


def check_example(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    words = tokens_of(example)
    if "COMMAND" in words:  # `georeason COMMAND --help`: every command's --help runs below
        return
    for word in words:
        if REPO_PATH.fullmatch(word) and not PLACEHOLDER.search(word.split("/")[-1].split(".")[0]):
            assert (ROOT / word).exists(), f"{example}: {word} does not exist"
    path, cmd, root_opts, args = resolve(words)
    if "--help" in words or "--version" in root_opts or is_cheap(path, args):
        # recipes/... are relative to the repository; score --example writes ./example.scores.json
        monkeypatch.chdir(tmp_path if path == ("score",) else ROOT)
        res = CliRunner().invoke(app, words[1:], env=ENV)
        assert res.exit_code == 0, f"{example}:\n{res.output}"
        if path == ("geocode",):
            json.loads(res.stdout)
        return
    if not args and getattr(cmd, "commands", None) is None:
        return  # `georeason demo` in prose: the command exists; its options are its defaults
    filled = fill_placeholders(cmd, args)
    with cmd.make_context(" ".join(["georeason", *path]), list(filled), resilient_parsing=False) as ctx:
        assert ctx.params is not None


def is_cheap(path: tuple[str, ...], args: list[str]) -> bool:
    if any(PLACEHOLDER.fullmatch(a) for a in args):
        return False
    return (
        path == ("geocode",)
        or (path == ("score",) and "--example" in args)
        or (path == ("data", "fetch") and "--list" in args)
        or (path[:1] == ("train",) and "--dry-run" in args)
    )


# --- the tests ---------------------------------------------------------------------------


def test_examples_are_found() -> None:
    readme = readme_examples()
    assert any(e.startswith("georeason data check --benchmark") for e in readme)
    assert any("train grpo --config recipes/tiny/geor_grpo.yaml" in e for e in readme)
    helps = [e for _, e in help_examples()]
    assert any(e.startswith("georeason eval --benchmark synthetic") for e in helps)
    assert "recipes/tiny/geor_grpo.yaml" in helps


@pytest.mark.parametrize("example", sorted(set(readme_examples())))
def test_readme_example(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_example(example, tmp_path, monkeypatch)


@pytest.mark.parametrize(("where", "example"), sorted(set(help_examples())))
def test_help_example(where: str, example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not example.startswith("georeason"):  # a repository path (or glob)
        assert list(ROOT.glob(example)), f"{where} --help names {example}, which does not exist"
        return
    check_example(example, tmp_path, monkeypatch)


@pytest.mark.parametrize("path", [p for p, _ in all_commands()], ids=lambda p: " ".join(p) or "georeason")
def test_help_runs(path: tuple[str, ...]) -> None:
    res = CliRunner().invoke(app, [*path, "--help"], env=ENV)
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output and "Traceback" not in res.output


def test_groups_name_all_their_commands() -> None:
    """The root --help shows each group's help line: it must name every command of the group."""
    for path, cmd in all_commands():
        subs = getattr(cmd, "commands", None)
        if path and subs:
            missing = [name for name in subs if name not in (cmd.help or "")]
            assert not missing, f"`georeason {' '.join(path)}` help does not name {missing}"


def test_readme_table_lists_every_command() -> None:
    table = README.read_text(encoding="utf-8").split("## Commands", 1)[1].split("\n## ", 1)[0]
    for path, cmd in all_commands():
        if path and not getattr(cmd, "commands", None):
            assert f"`georeason {' '.join(path)}" in table, f"README's Commands table lacks {' '.join(path)}"


def test_short_options_mean_the_same_everywhere() -> None:
    """`-o` is --out in every command that has it (and so on for every short option)."""
    longs: dict[str, set[frozenset[str]]] = {}
    for _, cmd in all_commands():
        for p in cmd.params:
            opts = [*p.opts, *getattr(p, "secondary_opts", [])]
            for short in (o for o in opts if re.fullmatch(r"-\w", o)):
                longs.setdefault(short, set()).add(frozenset(o for o in opts if o.startswith("--")))
    for short, names in longs.items():
        common = frozenset.intersection(*names)
        assert common, f"{short} means {sorted(sorted(n) for n in names)} in different commands"
    assert "--out" in frozenset.intersection(*longs["-o"])


def test_help_text_survives_markdown() -> None:
    """Help is rendered as markdown: words with * or _ (recipes/*/*.yaml, lat_col=) must not
    turn into emphasis and lose their characters."""
    for path, cmd in all_commands():
        shown = " ".join(
            CliRunner().invoke(app, [*path, "--help"], env={**ENV, "COLUMNS": "400"}).output.split()
        )
        texts = [cmd.help or "", *(getattr(p, "help", None) or "" for p in cmd.params)]
        for text in texts:
            for word in re.findall(r"\S*[*_]\S*", text):
                word = word.strip("`.,;:()")
                assert word in shown, f"`georeason {' '.join(path)} --help` shows {word!r} mangled"
