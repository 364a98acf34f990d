"""Every Python example of the README runs, and prints what the README shows."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
#: A ```python block, optionally followed by the ```text block of what it prints.
EXAMPLE = re.compile(r"```python\n(.*?)```\n(?:\n```text\n(.*?)```)?", flags=re.S)
EXAMPLES = EXAMPLE.findall(README.read_text())


def test_the_readme_has_examples():
    assert EXAMPLES


@pytest.mark.parametrize(
    ("code", "printed"), EXAMPLES, ids=[f"example {i + 1}" for i in range(len(EXAMPLES))]
)
def test_readme_example_runs_and_prints_what_it_shows(code, printed, capsys):
    exec(compile(code, "README example", "exec"), {})
    if printed:
        assert capsys.readouterr().out == printed


def test_readme_is_short():
    assert len(README.read_text().splitlines()) <= 250
