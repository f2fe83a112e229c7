"""The README stays true: its two commands, its recipes, every command line it shows, its result tables
(assembled from docs/results/*.md), its links, and a changelog whose version is the package's."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import gankit
from gankit.cli import parser
from gankit.config import recipe_names

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
VENV = "python3 -m venv .venv && . .venv/bin/activate && "


def code_lines():
    """Command lines in the README's shell code blocks (```bash or bare), continuations joined, comments dropped."""
    lines, lang, block = [], None, []
    for raw in README.splitlines():
        if raw.startswith("```"):
            if lang is None:
                lang, block = raw[3:].strip() or "bash", []
            else:
                if lang == "bash":
                    lines += [ln.split(" #", 1)[0].strip() for ln in "\n".join(block).replace("\\\n", " ").splitlines()]
                lang = None
        elif lang is not None:
            block.append(raw)
    return [ln for ln in lines if ln]


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    first = README.splitlines()[:4]
    assert first[0] == "```bash" and first[3] == "```"
    install_run, install_test = first[1], first[2]
    assert install_run.startswith(VENV) and install_run.endswith("gankit train")
    assert install_test.startswith(VENV) and "pytest" in install_test
    assert install_test[len(VENV):] in (ROOT / ".ci" / "run").read_text()


def test_every_recipe_is_in_the_table_and_every_named_recipe_exists():
    table = re.search(r"## Recipes\n(.*?)\n## ", README, flags=re.S).group(1)
    listed = {name for row in table.splitlines() if row.startswith("| `")
              for name in re.findall(r"`([\w-]+)`", row.split("|")[1])}
    assert listed == set(recipe_names())
    named = set(re.findall(r"--recipe[ =]([\w-]+)", README))
    assert named <= set(recipe_names()), named - set(recipe_names())


@pytest.mark.parametrize("line", [ln for ln in code_lines() if "gankit " in ln and not ln.startswith(("pip", "python3"))])
def test_every_command_line_shown_is_accepted_by_the_parser(line):
    words = shlex.split(line)
    argv = words[words.index("gankit") + 1:] if "gankit" in words else []
    args, extra = parser().parse_known_args(argv)  # a flag the parser lacks exits here
    assert not [x for x in extra if x.startswith("-")], extra
    assert all("=" in x for x in extra), extra  # only key=value overrides may follow the options


def test_result_tables_match_their_fragments():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "results.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_result_fragment_names_its_command_and_hardware():
    for path in sorted((ROOT / "docs" / "results").glob("*.md")):
        head = path.read_text().splitlines()[:3]
        assert head[0].startswith("Command: `") and head[2].startswith("Hardware: "), path.name
        assert "cores" in head[2] and "bf16 units" in head[2] and " thread" in head[2], path.name


def test_links_and_pictures_exist():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def test_the_pages_speak_of_the_project_not_of_the_work():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        assert not re.search(r"\bsessions?\b", page.read_text(), flags=re.I), page.name


def test_readme_is_a_guide_not_a_lab_book():
    assert len(README.splitlines()) <= 300


def test_changelog_version_is_the_package_version():
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), flags=re.M).group(1)
    top = re.search(r"^## \[(\d[^\]]*)\]", (ROOT / "CHANGELOG.md").read_text(), flags=re.M).group(1)
    assert version == top == gankit.__version__
