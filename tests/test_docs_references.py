"""Every citation of a documentation section names a file that exists and a section it holds.

A citation is a markdown file's name, a comma and a section's title in double quotes, as the code,
configs, benchmarks and docs cite one another: the docs' path (``docs/training.md``), a markdown
link to it (the link's target then comes between the two) or, inside ``docs/``, its bare name;
``BENCHMARKS.md`` and ``README`` (or ``README.md``) likewise. Its quotes may be escaped (inside a
Python string) and its title may break across lines: a Python or YAML comment's continuation
lines are joined, as are the two halves of a Python string split over two lines.

The title must begin one of the cited file's headings (``#`` lines) or bold lead-ins (a paragraph
or list item that starts with ``**...**``), compared with runs of whitespace read as one space.
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve()

# The files whose citations are checked.
SOURCES = (
    ("src", "**/*.py"),
    ("src", "**/*.yaml"),
    ("tests", "**/*.py"),
    ("benchmarks", "**/*.py"),
    ("docs", "*.md"),
    ("docs", "*.py"),
    (".", "README.md"),
    (".", "BENCHMARKS.md"),
    (".", "Makefile"),
)

CITATION = re.compile(
    r"(?<![\w/.-])"
    r"(?P<file>docs/[a-z_]+\.md|[a-z_]+\.md|BENCHMARKS\.md|README(?:\.md)?)"
    r"(?:\]\([^)\s]*\))?"  # a markdown link: the file's name, then its target
    r"\)?,? \\?\"(?P<title>[^\"\\]{1,200})\\?\""
)
HEADING = re.compile(r"^#+\s+(.*?)\s*#*\s*$")
BOLD_LEAD_IN = re.compile(r"^\s*(?:(?:[-*+]|\d+\.)\s+)?\*\*(.+?)\*\*")
FENCE = re.compile(r"^\s*(```|~~~)")


def _joined(path: Path) -> tuple[str, list[int]]:
    """The file's text with its lines joined by one space (leading whitespace, and for Python and
    YAML the comment marks, dropped), and the offset at which each line starts in it."""
    code = path.suffix in (".py", ".yaml") or path.name == "Makefile"
    text = ""
    starts: list[int] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if code:
            line = line.lstrip("#").strip()
        starts.append(len(text) + 1 if text else 0)
        if not text:
            text = line
        elif path.suffix == ".py" and text.endswith('"') and line.startswith('"'):
            # Implicit concatenation of two string literals: "...docs/x.md, " "\"title\")"
            if text.endswith('"""') or line.startswith('"""'):
                text += " " + line
            else:
                starts[-1] = len(text) - 1
                text = text[:-1] + line[1:]
        else:
            text += " " + line
    return text, starts


def citations(path: Path) -> list[tuple[int, Path, str]]:
    """(line, cited file, cited title) of each citation in ``path``."""
    text, starts = _joined(path)
    found = []
    for match in CITATION.finditer(text):
        name = match["file"]
        if name.startswith("README"):
            target = ROOT / "README.md"
        elif name.startswith("docs/") or name == "BENCHMARKS.md":
            target = ROOT / name
        elif path.parent == ROOT / "docs" and path.suffix == ".md":
            target = path.parent / name  # a relative link between the docs
        else:
            continue  # a bare file name outside docs/ names some other file (a run's report.md)
        line = bisect.bisect_right(starts, match.start())
        found.append((line, target, " ".join(match["title"].split())))
    return found


def anchors(path: Path) -> list[str]:
    """The headings and bold lead-ins of a markdown file, whitespace normalised."""
    found = []
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        match = HEADING.match(line) or BOLD_LEAD_IN.match(line)
        if match:
            found.append(" ".join(match[1].split()))
    return found


def _sources() -> list[Path]:
    paths = set()
    for folder, pattern in SOURCES:
        for path in (ROOT / folder).glob(pattern):
            if path.is_file() and path.resolve() != SELF and ".venv" not in path.parts:
                paths.add(path)
    return sorted(paths)


def broken_citations() -> tuple[int, list[str]]:
    """How many citations were checked, and each broken one as ``path:line: file "title"``."""
    cache: dict[Path, list[str] | None] = {}
    checked = 0
    broken = []
    for path in _sources():
        for line, target, title in citations(path):
            checked += 1
            if target not in cache:
                cache[target] = anchors(target) if target.is_file() else None
            titles = cache[target]
            if titles is None or not any(anchor.startswith(title) for anchor in titles):
                where = path.relative_to(ROOT)
                cited = target.relative_to(ROOT)
                why = "" if titles is not None else " (no such file)"
                broken.append(f'{where}:{line}: {cited} "{title}"{why}')
    return checked, broken


def test_every_cited_section_exists():
    checked, broken = broken_citations()
    assert checked > 50, f"only {checked} citations found: has the citation style changed?"
    assert not broken, f"{len(broken)} citations name no section:\n" + "\n".join(broken)


def test_citations_are_found_in_their_styles(tmp_path):
    q = '"'
    source = tmp_path / "example.py"
    source.write_text(
        f"# Measured (docs/training.md, {q}Speed{q}) and (docs/training.md, {q}The\n"
        f"# demo's time{q}); [docs/training.md](docs/training.md), {q}Configs{q}\n"
        f'help="x (docs/training.md, "\n'
        f'"\\{q}Evaluation and prediction\\{q})"\n',
        encoding="utf-8",
    )
    found = [(line, title) for line, _, title in citations(source)]
    assert found == [
        (1, "Speed"),
        (1, "The demo's time"),
        (2, "Configs"),
        (3, "Evaluation and prediction"),
    ]
