"""Type-check the library with mypy under the module names it is installed with.

pyproject's ``package-dir`` installs the folders models/, samplers/ and designs/ as
``dosezoo.models``, ``dosezoo.samplers`` and ``dosezoo.designs``. mypy has no such mapping:
given the folders it checks models/base.py as the module ``models.base``, and an import of
``dosezoo.models.base`` elsewhere in the library then resolves to nothing. So this script lays
the library out under build/typecheck/ as it is installed, with symbolic links to the
repository's files (every mapped folder at its package's place), runs mypy there with
pyproject's ``[tool.mypy]`` settings (``mypy_path`` points at build/typecheck and ``packages``
names ``dosezoo``), and prints the repository's own paths in mypy's messages.

Run ``make lint`` (or ``python tools/typecheck.py [mypy options]``); the exit status is mypy's.
"""

import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"
# A message's leading "path.py:line" (mypy prints paths relative to the working directory).
LOCATION = re.compile(r"^(?P<path>[^:\s]+\.pyi?)(?=:)", re.MULTILINE)


def lay_out(package_dir: dict[str, str], tree: Path = TREE) -> None:
    """Link the library into ``tree`` in its installed layout.

    Parameters
    ----------
    package_dir : dict of str to str
        setuptools' ``package-dir``: package name to folder, relative to the repository.
    tree : Path
        Where the layout is made; it is made afresh each time.
    """
    shutil.rmtree(tree, ignore_errors=True)
    # Parents before the packages mapped inside them ("dosezoo" before "dosezoo.models").
    for package, folder in sorted(package_dir.items()):
        place = tree.joinpath(*package.split("."))
        source = ROOT / folder
        if any(other.startswith(package + ".") for other in package_dir):
            # Its own modules and subpackages, one link each, leaving room for the mapped ones.
            place.mkdir(parents=True)
            for entry in sorted(source.iterdir()):
                if entry.suffix in {".py", ".pyi"} or (entry / "__init__.py").is_file():
                    (place / entry.name).symlink_to(os.path.relpath(entry, place))
        else:
            place.parent.mkdir(parents=True, exist_ok=True)
            place.symlink_to(os.path.relpath(source, place.parent))


def repository_paths(report: str) -> str:
    """Replace the link tree's paths in mypy's messages by the files they link to.

    Parameters
    ----------
    report : str
        mypy's output, its paths relative to the repository.

    Returns
    -------
    str
        The same output, each path under build/typecheck/ relative to the repository again.
    """

    def real(match: re.Match[str]) -> str:
        path = ROOT / match["path"]
        if not path.is_relative_to(TREE):
            return match["path"]
        return os.path.relpath(path.resolve(), ROOT)

    return LOCATION.sub(real, report)


def main(arguments: list[str]) -> int:
    """Lay the library out, run mypy on it and print its messages.

    Parameters
    ----------
    arguments : list of str
        Further mypy options.

    Returns
    -------
    int
        mypy's exit status.
    """
    with open(ROOT / "pyproject.toml", "rb") as stream:
        package_dir = tomllib.load(stream)["tool"]["setuptools"]["package-dir"]
    lay_out(package_dir)
    os.chdir(ROOT)
    stdout, stderr, status = api.run(arguments)
    sys.stdout.write(repository_paths(stdout))
    sys.stderr.write(repository_paths(stderr))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
