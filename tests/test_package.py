import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    found = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found == set(config["packages"])


def test_subpackages_import_through_dosezoo():
    import dosezoo.designs
    import dosezoo.models
    import dosezoo.samplers

    assert dosezoo.models.ThreePND.__module__ == "dosezoo.models.three_pnd"
    assert dosezoo.samplers.RidgeMove.__module__ == "dosezoo.samplers.three_pnd"
    assert dosezoo.designs.MTDQuantileRule.__module__ == "dosezoo.designs.mtd_quantile"
