import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys):
    [example] = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    exec(compile(example, "README example", "exec"), {})
    printed = capsys.readouterr().out
    assert "mtd" in printed  # the convergence table of the decision
    assert re.match(r"(40|60|80|100|120)\.0 ", printed)
