"""What `pip install .` ships: every package directory must be a real package,
or setup.py's find_packages() leaves it out and an installed webqq cannot import it
(an editable install would hide that)."""
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def test_every_module_directory_is_a_package():
    for directory in (ROOT / "webqq").rglob("*"):
        if directory.is_dir() and any(directory.glob("*.py")):
            assert (directory / "__init__.py").exists(), f"{directory} lacks __init__.py"


def test_find_packages_ships_them_all():
    shipped = set(find_packages(str(ROOT), exclude=["tests", "tests.*", "bench"]))
    expected = {".".join(d.relative_to(ROOT).parts) for d in (ROOT / "webqq").rglob("*")
                if d.is_dir() and (d / "__init__.py").exists()} | {"webqq"}
    assert expected <= shipped
