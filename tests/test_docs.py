"""The README and docs/ against the product: every command they name answers ``--help``,
every relative link leads to a file (and heading) that exists, no example points outside
the checkout, and the screenshots render without the network.

Documentation drifts silently; these checks make a renamed command, a moved page or a
dropped heading fail the suite instead of a stranger's first try.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The reference folder beside our own checkouts, spelled so this file does not name it.
SIBLING = "../" + "sha" + "red"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SCREENSHOTS = ROOT / "screenshots"

#: The longest the README may grow: its first screen is the quickstart, the rest is in docs/.
README_MAX_LINES = 250

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
#: ``mpsandbox WORD [WORD]``: the command and, for a group, its subcommand. Not
#: ``mpsandbox/...`` (schema titles) or ``.../mpsandbox`` (paths), not ``mpsandbox:``.
COMMAND = re.compile(r"(?<![\w/.-])mpsandbox[ \t]+([a-z][a-z-]*)(?:[ \t]+([a-z][a-z-]*))?")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def code_text(markdown: str) -> str:
    """The text of every fenced block (but output, fenced as ``text``) and code span."""
    # A block fenced as ```text is output (an answer, a log line), not commands to run.
    blocks = [m.group(0) for m in FENCE.finditer(markdown) if not m.group(0).startswith("```text")]
    prose = FENCE.sub("", markdown)
    spans = [m.group(2) for m in INLINE_CODE.finditer(prose)]
    return "\n".join(blocks + spans)


def prose_text(markdown: str) -> str:
    """The markdown without code (links inside code are examples, not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", markdown))


def named_commands(markdown: str) -> set[tuple[str, ...]]:
    """Each ``mpsandbox WORD [WORD]`` named in code, as its words."""
    found = set()
    for line in code_text(markdown).splitlines():
        for m in COMMAND.finditer(line):
            found.add(tuple(w for w in m.groups() if w))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def broken_links(path: Path) -> list[str]:
    """Every relative link of ``path`` whose file or ``#anchor`` does not exist."""
    problems = []
    for m in LINK.finditer(prose_text(path.read_text(encoding="utf-8"))):
        target = m.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # http:, https:, mailto:
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{target}: no such file {os.path.relpath(dest, ROOT)}")
            continue
        if anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            problems.append(f"{target}: no heading #{anchor} in {dest.name}")
    return problems


def all_commands() -> list[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for path in doc_files():
        found |= named_commands(path.read_text(encoding="utf-8"))
    return sorted(found)


def run_help(words: tuple[str, ...]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mpsandbox", *words, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def subcommands(help_text: str) -> set[str] | None:
    """The commands a group's ``--help`` lists (None: not a group)."""
    if "\nCommands:\n" not in help_text:
        return None
    listing = help_text.split("\nCommands:\n", 1)[1]
    return {line.split()[0] for line in listing.splitlines() if line.startswith("  ")}


# -- the pieces can fail ----------------------------------------------------------------


def test_the_parsers_see_what_they_must(tmp_path):
    """A wrong command, a missing file and a missing heading are each reported; code and
    schema titles are not mistaken for commands or links."""
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A heading, with `code`!\n")
    page.write_text(
        "# Page\n\nSee [ok](other.md#a-heading-with-code), [self](#page),\n"
        "[gone](missing.md), [no anchor](other.md#nope), [web](https://example.org/x).\n\n"
        "```sh\nmpsandbox serve --port 8193   # [not a link](nowhere.md)\n"
        "mpsandbox schema lint --fragment mpsandbox/experiment ~/.local/share/mpsandbox x\n```\n"
        "Inline `mpsandbox frobnicate` too; prose mpsandbox answers is not a command.\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file " + os.path.relpath(tmp_path / "missing.md", ROOT),
        "other.md#nope: no heading #nope in other.md",
    ]
    assert named_commands(page.read_text()) == {
        ("serve",),
        ("schema", "lint"),
        ("frobnicate",),
    }
    result = run_help(("frobnicate",))
    assert result.returncode != 0 and "No such command" in result.stderr


# -- the real pages -----------------------------------------------------------------------


@pytest.mark.parametrize("words", all_commands(), ids=" ".join)
def test_every_named_command_answers_help(words):
    result = run_help(words[:1])
    assert result.returncode == 0, f"mpsandbox {words[0]} --help: {result.stderr}"
    listed = subcommands(result.stdout)
    if listed is not None and len(words) > 1:
        assert words[1] in listed, f"mpsandbox {words[0]} has no command {words[1]!r}"
        sub = run_help(words)
        assert sub.returncode == 0, f"mpsandbox {' '.join(words)} --help: {sub.stderr}"


def test_the_docs_name_commands():
    """The parametrized test above is not vacuous: the pages name the main commands."""
    named = {words[0] for words in all_commands()}
    assert {"serve", "demo", "validate", "schema", "check", "replay", "chaos"} <= named


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_readme_is_short_and_starts_right():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    first_screen = "\n".join(text.splitlines()[:40])
    assert "](screenshots/" in first_screen  # the picture
    assert "./start" in first_screen
    assert "$wgEventLoggingServiceUri = 'http://localhost:8192/v1/events';" in first_screen
    assert "web/base" in first_screen and "--schemas" in first_screen
    assert "--offline" in first_screen
    assert "## Troubleshooting" in text and "10.0.2.2" in text


def test_no_example_points_outside_the_checkout():
    """A stranger's clone has nothing beside it: no sibling reference folder, no paths of
    our own machines."""
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        assert SIBLING not in text and "/work/" not in text, path


# -- the screenshots ----------------------------------------------------------------------


def font_urls(svg: str) -> list[str]:
    """Fonts an SVG would fetch over the network (``url(http...)`` or ``@import``)."""
    return re.findall(r"(?:url\(\s*['\"]?|@import\s+['\"])(https?://[^'\")\s]+)", svg)


def test_font_check_catches_a_web_font():
    textual_style = (
        '@font-face { font-family: "Fira Code"; src: local("FiraCode-Regular"), '
        'url("https://cdnjs.cloudflare.com/ajax/libs/firacode/6.2.0/woff2/FiraCode-Regular.woff2")'
        ' format("woff2"); }'
    )
    assert font_urls(textual_style)
    assert not font_urls('<svg xmlns="http://www.w3.org/2000/svg"><style>.t{}</style></svg>')


def test_screenshots_render_without_the_network():
    svgs = sorted(SCREENSHOTS.glob("*.svg"))
    assert svgs
    for svg in svgs:
        assert font_urls(svg.read_text(encoding="utf-8")) == [], svg.name
