"""Every ``hopose`` command the documentation shows still parses as written (README: "every
example must run as written"), so that a renamed option, sub-command, shipped config or config
field is caught where the docs use it.

What counts as a command, in README.md, BENCHMARKS.md and docs/*.md:

- in a fenced block, a line that starts with ``hopose`` (or holds ``-m hopose.cli``, a torchrun
  line), its backslash continuations joined and its ``#`` comment dropped (shell words, read
  with :mod:`shlex`); ``$VAR`` of a ``for VAR in a b c; do`` earlier in the block takes each of
  its values in turn;
- an inline code span that starts with ``hopose``, its words joined across markdown lines.

In both, ``hopose`` must be followed (after top-level options such as ``--debug``) by a lowercase
word, the sub-command, or by nothing (``hopose --version``). That leaves out what the docs quote
of hopose's output (``hopose eval: error: ...``, ``hopose 0.1.0``) and its grammar
(``hopose <command>: ...``), while a misspelt sub-command still fails.

How each command is read before it is parsed:

- ``[...]`` marks optional parts: the brackets are dropped and what they hold is kept, so that
  the optional options are checked too (a YAML list value, ``KEY=[1, 2]``, keeps its own);
- ``a|b`` in a word offers alternatives: each one is checked;
- a placeholder word of :data:`PLACEHOLDERS` (``N``, ``M``, ``DATASET``...), alone or after
  ``KEY=``, takes an example value of the type that goes there. Path placeholders (``RUN``,
  ``CKPT``, ``RUN/best.pt``, ``$PREV``) are strings to the parser and to the config, so stay;
- a ``...`` word stands for words left out: it is dropped, with the option before it where it is
  that option's value (``--data ...``), and the command may then lack required arguments;
- an inline span may be a fragment of a command that names the command or one of its options
  (``hopose eval --gt-2d``, ``hopose eval --workers``): required arguments may be missing and a
  value-taking option may end it without its value. A fenced command must be whole.

Then hopose's own parser (:func:`hopose.cli.build_parser`) must accept it, every option spelt in
full (argparse's abbreviations are turned off). Nothing is run. ``hopose train``'s config and
``--set`` overrides are read with :func:`hopose.config.load_config`, the config found by name as
the command finds it (:func:`hopose.configs.find_config`): a stale field or a bad value fails.
That loader checks types and ranges, not that files exist, so ``init_from=RUN/best.pt`` passes,
as it does when the command reads its config (the checkpoint is looked for when the run starts).
``hopose ablate``'s ``--set`` overrides are read into each stage config of the study as the
command reads them before it trains (:func:`hopose.ablate.study_overrides`).

Skipped: only the commands of :data:`REFUSED`, which docs/robustness.md quotes as the bad input
whose refusal it documents; each must still be found there and refused with that message.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import re
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hopose import ablate
from hopose.cli import USER_ERRORS, build_parser
from hopose.config import load_config
from hopose.configs import config_path, find_config
from test_docs_references import FENCE

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "BENCHMARKS.md", "docs/*.md")

# Placeholder words where a typed value goes, each with an example of that type: written as it
# is, argparse's or OmegaConf's type check would refuse the word, not the documented option.
PLACEHOLDERS = {
    "N": "8",  # a count: --batch-size N, data.num_train=N
    "E": "2",  # a number of epochs: optim.epochs=E (as --out E, a folder, "2" is one too)
    "M": "0.3",  # a self-crop margin: --self-crop-margin M
    "S": "train",  # a split: hopose synth --split S
    "DATASET": "synthetic",  # --data DATASET
    "<dataset>": "fpha",  # hopose data check <dataset>, a real dataset
    "CONFIG": "synthetic/lifter",  # hopose train CONFIG: any shipped config
}

# Commands docs/robustness.md quotes as the bad input it documents, each with the text of its
# refusal: (file, command as written) -> what the refusal says.
REFUSED = {
    ("docs/robustness.md", 'hopose eval ... --out ""'): "argument --out: expected a path",
    ("docs/robustness.md", "hopose eval CKPT --data fhpa ..."): "invalid choice: 'fhpa'",
    ("docs/robustness.md", "hopose train no/such --out x"): "config not found: no/such",
    ("docs/robustness.md", "hopose train configs/fpha/lifter.yaml"): "config not found",
    ("docs/robustness.md", "hopose ablate lifter --num 0"): "expected an integer >= 1",
    ("docs/robustness.md", "hopose synth ... --image-size 0"): "expected an integer >= 8",
}

# The docs held 337 commands to check on 2026-12-05 (loops and alternatives expanded, REFUSED
# left out): a floor somewhat below, so that commands written in a way this test no longer
# finds fail it instead of leaving nothing checked.
MIN_COMMANDS = 300

# An inline code span, not across a blank line (a paragraph's end).
SPAN = re.compile(r"(`+)((?:(?!\n[ \t]*\n).)+?)\1", re.DOTALL)
FOR_LOOP = re.compile(r"\bfor\s+(\w+)\s+in\s+([^;]+);\s*do\b")
COMMAND_START = re.compile(r"^\s*hopose\s|\s-m\s+hopose\.cli\s")
SUBCOMMAND = re.compile(r"[a-z][a-z-]*")
ELLIPSIS = "..."


@dataclass(frozen=True)
class DocCommand:
    """A line or span of the docs that may be a command: its file, line, shell text (loop
    variables given their values) and whether it is an inline span."""

    path: Path
    line: int
    text: str
    inline: bool


def doc_files() -> list[Path]:
    return sorted({path for pattern in DOCS for path in ROOT.glob(pattern)})


def _fenced_lines(lines: Sequence[str], start: int) -> Iterator[tuple[int, str]]:
    """(line number, text) of each logical line of a fenced block whose first line is number
    ``start``: continuation lines joined, the variables of the block's ``for`` loops given each
    of their values."""
    loops: dict[str, list[str]] = {}
    number, text = start, ""
    for offset, line in enumerate(lines):
        if not text:
            number = start + offset
        text += line
        if text.endswith("\\"):
            text = text[:-1] + " "
            continue
        for name, values in FOR_LOOP.findall(text):
            loops[name] = values.split()
        used = [name for name in loops if re.search(rf"\$\{{?{name}\b", text)]
        for values in itertools.product(*(loops[name] for name in used)):
            expanded = text
            for name, value in zip(used, values, strict=True):
                expanded = re.sub(rf"\$\{{?{name}\b\}}?", value, expanded)
            yield number, expanded
        text = ""


def doc_commands(path: Path) -> list[DocCommand]:
    """The fenced lines and inline spans of the markdown file ``path`` that may be commands
    (they start as one; :func:`readings` tells)."""
    found = []
    prose = []  # the file with its fenced blocks blanked, for the inline spans
    block: list[str] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            if block is not None:
                for at, text in _fenced_lines(block, number - len(block)):
                    found.append(DocCommand(path, at, " ".join(text.split()), inline=False))
            block = [] if block is None else None
            prose.append("")
        elif block is not None:
            block.append(line)
            prose.append("")
        else:
            prose.append(line)
    text = "\n".join(prose)
    for match in SPAN.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        found.append(DocCommand(path, line, " ".join(match[2].split()), inline=True))
    return sorted(
        (command for command in found if COMMAND_START.search(command.text)),
        key=lambda command: command.line,
    )


def _words_after_hopose(words: Sequence[str]) -> list[str] | None:
    """The words after ``hopose`` of a command, or None where ``words`` is output or grammar,
    not a command (module docstring)."""
    if "-m" in words and "hopose.cli" in words:  # torchrun ... -m hopose.cli train ...
        rest = list(words[words.index("hopose.cli") + 1 :])
    else:
        rest = list(words[1:])
    first = next((word for word in rest if not word.startswith("-")), None)
    return rest if first is None or SUBCOMMAND.fullmatch(first) else None


def _unbracketed(word: str) -> str:
    """``word`` without the brackets that mark an optional part: a leading ``[`` always, a
    trailing ``]`` unless it closes a ``[`` of the word's own (a YAML list, ``KEY=[1, 2]``)."""
    word = word.lstrip("[")
    return word if "[" in word else word.rstrip("]")


def _placeholder(word: str) -> str:
    key, sep, value = word.rpartition("=")
    return f"{key}{sep}{PLACEHOLDERS.get(value, value)}"


def readings(text: str) -> Iterable[tuple[str, ...]]:
    """The words after ``hopose`` of the shell text ``text``, one tuple per alternative
    (``a|b``), read as the module docstring says; none where ``text`` is no command.

    Raises:
        ValueError: ``text`` is not shell words (an unclosed quote).
    """
    words = _words_after_hopose(shlex.split(text, comments=True))
    if words is None:
        return ()
    # A word of brackets alone marks a part and holds nothing (an empty word, --out "", stays).
    words = [_placeholder(_unbracketed(word)) for word in words if word == "" or word.strip("[]")]
    return itertools.product(*(word.split("|") for word in words))


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """``parser``'s sub-commands by name (none for a leaf command)."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def _all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for sub in _subparsers(parser).values():
        yield from _all_parsers(sub)


def _command_parser(
    parser: argparse.ArgumentParser, words: Sequence[str]
) -> argparse.ArgumentParser:
    """The (sub-)parser whose options the command ``words`` uses: ``hopose data check``'s for
    ``data check ...``; where a word names no sub-command, the last one found (argparse then
    refuses the word)."""
    for word in words:
        if word.startswith("-"):
            continue
        if word not in _subparsers(parser):
            break
        parser = _subparsers(parser)[word]
    return parser


def _without_mentions(
    parser: argparse.ArgumentParser, words: Sequence[str], fragment: bool
) -> list[str]:
    """``words`` without its ``...`` (and the option whose value it stands for) and, in a
    fragment, without a last option named with no value. Each option dropped so is one of the
    command's, looked up in its parser, which refuses any other."""
    options = _command_parser(parser, words)._option_string_actions

    def takes_value(word: str) -> bool:
        return word in options and options[word].nargs != 0

    kept: list[str] = []
    for word in words:
        if word != ELLIPSIS:
            kept.append(word)
        elif kept and takes_value(kept[-1]):
            kept.pop()
    if fragment and kept and takes_value(kept[-1]):
        kept.pop()
    return kept


def _parse(words: Sequence[str], fragment: bool) -> argparse.Namespace | str:
    """hopose's parser's reading of ``words``, or the last line of argparse's complaint. No
    option may be abbreviated; in a fragment, no argument is required."""
    parser = build_parser()
    for each in _all_parsers(parser):
        each.allow_abbrev = False
        for action in each._actions if fragment else ():
            action.required = False
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            return parser.parse_args(_without_mentions(parser, words, fragment))
    except SystemExit as exit_:
        if exit_.code == 0:  # --help or --version, printed: the command parsed
            return argparse.Namespace(command=None)
        return (stderr.getvalue().strip().splitlines() or [f"exit status {exit_.code}"])[-1]


def _config_problem(args: argparse.Namespace) -> str | None:
    """What the configs refuse of the parsed command ``args``: ``hopose train``'s config with
    its overrides; each stage config of ``hopose ablate``'s study with the ``--set`` overrides
    the stage reads, as :func:`hopose.ablate.run_ablation` reads them before it trains (the
    command's ``--input both`` is every input)."""
    try:
        if args.command == "train" and args.config is not None:
            load_config(find_config(args.config), args.overrides)
        elif args.command == "ablate" and args.overrides and args.study and args.data:
            inputs = ablate.PHYSICS_INPUTS if args.input in (None, "both") else (args.input,)
            stage_overrides = ablate.study_overrides(
                args.study, args.overrides, sources=inputs, init=args.init, root=args.root,
                cache=args.cache, seed=args.seed, num=args.num, quick=args.quick,
            )  # fmt: skip
            for stage, overrides in stage_overrides.items():
                load_config(config_path(args.data, stage), overrides)
    except USER_ERRORS as error:
        return f"{type(error).__name__}: {error}"
    return None


def command_problem(words: Sequence[str], *, fragment: bool = False) -> str | None:
    """Why hopose would refuse the command ``words`` (the words after ``hopose``) as it parses
    it and reads its config, or None where it accepts it; nothing is run."""
    parsed = _parse(words, fragment)
    return parsed if isinstance(parsed, str) else _config_problem(parsed)


def check_docs(
    paths: Iterable[Path], root: Path = ROOT
) -> tuple[int, list[str], dict[tuple[str, str], str | None]]:
    """How many commands of the markdown files ``paths`` were checked; each one refused, as
    ``file:line: command -> error`` (file relative to ``root``); the refusal of each command of
    :data:`REFUSED` found (None where it was accepted)."""
    checked = 0
    failures = []
    refused: dict[tuple[str, str], str | None] = {}
    for path in paths:
        name = path.relative_to(root).as_posix()
        for command in doc_commands(path):
            where = f"{name}:{command.line}: {command.text}"
            try:
                alternatives = list(readings(command.text))
            except ValueError as error:
                failures.append(f"{where} -> not shell words: {error}")
                continue
            for words in alternatives:
                fragment = command.inline or ELLIPSIS in words
                problem = command_problem(words, fragment=fragment)
                if (name, command.text) in REFUSED:
                    refused[(name, command.text)] = problem
                    continue
                checked += 1
                if problem is not None:
                    failures.append(f"{where} -> {problem}")
    return checked, failures, refused


def test_every_documented_command_parses_as_written():
    checked, failures, refused = check_docs(doc_files())
    assert checked >= MIN_COMMANDS, (
        f"only {checked} commands found: has the way the docs write commands changed?"
    )
    assert not failures, f"{len(failures)} documented commands fail:\n" + "\n".join(failures)
    for key, message in REFUSED.items():
        assert key in refused, f"{key[0]}: {key[1]!r} is no longer there; drop it from REFUSED"
        assert message in (refused[key] or ""), (
            f"{key[0]}: {key[1]!r} is no longer refused with {message!r}: {refused[key]}"
        )


def test_the_check_reports_misspelt_options_fields_values_and_configs(tmp_path):
    # Hand-written bad commands, each with the misspelt word and its right spelling: the command
    # spelt right is accepted, so that each refusal is the misspelling's.
    misspelt = [
        ("eval CKPT --data synthetic --num 4 --gt2d --out R", "--gt2d", "--gt-2d"),
        (  # argparse alone would take the prefix for --self-crop-margin
            "eval CKPT --data synthetic --num 4 --self-crop 0.3 --out R",
            "--self-crop ",
            "--self-crop-margin ",
        ),
        ("evaluate CKPT --data synthetic --num 4 --out R", "evaluate", "eval"),
        ("train synthetic/lifter --set optim.learning_rate=1e-4 --out R", "learning_rate", "lr"),
        ("train synthetic/lifter --set optim.lr=fast --out R", "fast", "1e-4"),
        ("train synthetic/lifters --out R", "lifters", "lifter"),
        ("ablate lifter --data synthetic --set perturb.sgima=0.1 --out R", "sgima", "sigma"),
        (  # a field no run of the lifter study reads (no 2D is predicted)
            "ablate lifter --data synthetic --set loss.w_2d=0.5 --out R",
            "loss.w_2d",
            "perturb.sigma",
        ),
    ]
    for bad, wrong, right in misspelt:
        good = bad.replace(wrong, right)
        assert command_problem(bad.split()) is not None, bad
        assert command_problem(good.split()) is None, (good, command_problem(good.split()))
    # What the refusals say: argparse's usage error, or the config's one line naming the key.
    assert "unrecognized arguments: --gt2d" in (command_problem(misspelt[0][0].split()) or "")
    assert "unknown key optim.learning_rate" in (command_problem(misspelt[3][0].split()) or "")
    # A fenced command must be whole; a fragment (an inline span, or one with "...") may lack
    # required arguments and end with an option named without its value, not name a wrong one.
    assert "required: --out" in (command_problem(["eval", "CKPT", "--data", "synthetic"]) or "")
    assert command_problem(["eval", "--workers"], fragment=True) is None
    assert command_problem(["eval", "--data", "...", "--gt-2d"], fragment=True) is None
    assert command_problem(["eval", "--wokers"], fragment=True) is not None
    assert command_problem(["eval", "--data", "fhpa", "..."], fragment=True) is not None

    # The whole path on a doc as written, then with one option and one field misspelt.
    doc = tmp_path / "doc.md"
    text = (
        "Run `hopose eval RUN/best.pt --data synthetic\n--num N --gt-2d --out E` or:\n\n"
        "```\n"
        "for st in lifter encoder; do\n"
        "  hopose train synthetic/$st --set optim.lr=1e-4 \\\n"
        "    --out runs/$st  # a comment's words are not parsed: --bad\n"
        "done\n"
        "hopose eval: error: quoted output, not a command\n"
        "hopose compare A B ... --out C [--paper]\n"
        "```\n"
    )
    doc.write_text(text, encoding="utf-8")
    assert [(c.line, c.inline) for c in doc_commands(doc)] == [
        (1, True), (6, False), (6, False), (9, False), (10, False),
    ]  # fmt: skip
    assert check_docs([doc], tmp_path) == (4, [], {})
    doc.write_text(text.replace("--gt-2d", "--gt2d").replace("optim.lr", "optim.rate"), "utf-8")
    checked, failures, _ = check_docs([doc], tmp_path)
    assert checked == 4
    assert [failure.split(" -> ")[0] for failure in failures] == [
        "doc.md:1: hopose eval RUN/best.pt --data synthetic --num N --gt2d --out E",
        "doc.md:6: hopose train synthetic/lifter --set optim.rate=1e-4 --out runs/lifter "
        "# a comment's words are not parsed: --bad",
        "doc.md:6: hopose train synthetic/encoder --set optim.rate=1e-4 --out runs/encoder "
        "# a comment's words are not parsed: --bad",
    ]
    assert "unrecognized arguments: --gt2d" in failures[0]
    assert "unknown key optim.rate" in failures[1]
