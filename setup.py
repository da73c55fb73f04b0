"""Packaging glue that pyproject.toml cannot express: the `tui/` folder installs as `ticraft_tui`.

(A PyPI package called `tui` exists, so the folder's import name must differ from its name.)
"""

from setuptools import find_packages, setup

tui_packages = ["ticraft_tui"] + [f"ticraft_tui.{p}" for p in find_packages("tui")]
setup(
    packages=find_packages(include=["ticraft", "ticraft.*"]) + tui_packages,
    package_dir={"ticraft_tui": "tui"},
    package_data={"ticraft_tui": ["*.tcss"]},  # the app's stylesheet
)
