"""One table of exit codes (errors.EXIT_CODES): the README documents the same codes, and
every command's ``--help`` builds its "Exit codes:" paragraph from it."""

from __future__ import annotations

import re

import pytest
from helpers import ROOT

from qrmi_tasks.errors import EXIT_CODES, exit_codes_help

README = (ROOT / "README.md").read_text()


def _readme_exit_codes() -> list[str]:
    """The first column of the README's "### Exit codes" table, in order."""
    section = README.split("### Exit codes\n", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    codes = [row.split("|")[1].strip() for row in rows]
    assert codes[:2] == ["code", "---"], codes  # the header and its rule
    return codes[2:]


def test_readme_table_lists_the_same_codes_in_the_same_order():
    assert _readme_exit_codes() == list(EXIT_CODES)


def test_runner_help_prints_the_table_as_the_readme_shows_it(in_process):
    paragraph = exit_codes_help()
    assert paragraph.startswith("Exit codes: 0 success; 1 task failed")
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {meaning}" in " ".join(paragraph.split())
    indented = "\n".join("  " + line for line in paragraph.splitlines())
    done = in_process.run("--help")
    assert done.code == 0 and indented in done.stdout
    # the README's copy of --help is the command's output
    assert indented in README


def test_a_line_ends_after_a_whole_entry_or_keeps_code_and_meaning_together():
    lines = exit_codes_help().splitlines()
    assert all(len(line) <= 75 for line in lines), lines
    # no line ends on a bare code (0, 70, 128+N) cut off from its meaning
    assert not any(re.search(r"(^|; )(\d+|128\+N)$", line) for line in lines), lines
    narrow = exit_codes_help(width=30).splitlines()
    assert all(len(line) <= 30 for line in narrow), narrow
    assert " ".join(narrow) == " ".join(exit_codes_help().split())


def test_a_command_words_only_documented_codes():
    text = exit_codes_help({"130": "interrupted (Ctrl-C)", "0": "fine"})
    assert text == "Exit codes: 0 fine; 130 interrupted (Ctrl-C)."  # 130 in 128+N's row
    with pytest.raises(ValueError, match="exit code 5 is not in the documented table"):
        exit_codes_help({"5": "undocumented"})


def test_qrmi_gen_help_uses_the_table_in_its_own_words(in_process):
    from generators.cli import EXIT_MEANINGS

    assert exit_codes_help(EXIT_MEANINGS).startswith("Exit codes: 0 success; 2 bad input")
    done = in_process.gen("--help")
    help_text = " ".join(done.stdout.split())  # click rewraps this paragraph
    assert done.code == 0
    assert " ".join(exit_codes_help(EXIT_MEANINGS).split()) in help_text
    assert "130 interrupted (Ctrl-C)." in help_text
