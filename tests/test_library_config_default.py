"""The `library` setting (`ticraft config set library PATH`) picks the default library:
--library > $TICRAFT_LIBRARY > the setting > ./embeddings > the user data folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ticraft.cli.main import app
from ticraft.concept import Concept
from ticraft.errors import TicraftError
from ticraft.library import MANIFEST, Library


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file (via $TICRAFT_CONFIG) whose `library` setting names tmp_path/configured; no env library."""
    folder = tmp_path / "configured"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"library": str(folder)}))
    monkeypatch.setenv("TICRAFT_CONFIG", str(config))
    monkeypatch.delenv("TICRAFT_LIBRARY", raising=False)
    monkeypatch.chdir(tmp_path)
    return folder


def test_the_setting_is_the_default(configured: Path) -> None:
    assert Library.resolve(None).root == configured
    assert Library.resolve().root == configured
    assert not configured.exists()  # resolving touches nothing, as with --library


def test_explicit_argument_and_env_var_still_win(configured: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert Library.resolve(tmp_path / "explicit").root == tmp_path / "explicit"
    monkeypatch.setenv("TICRAFT_LIBRARY", str(tmp_path / "env"))
    assert Library.resolve().root == tmp_path / "env"
    assert Library.resolve(tmp_path / "explicit").root == tmp_path / "explicit"


def test_the_setting_wins_over_local_embeddings(configured: Path, tmp_path: Path) -> None:
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / MANIFEST).write_text('{"schema": 1, "entries": []}')
    assert Library.resolve().root == configured


def test_unset_setting_falls_through(configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"library": "", "device": "cpu"}))
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / MANIFEST).write_text('{"schema": 1, "entries": []}')
    assert Library.resolve().root == tmp_path / "embeddings"
    monkeypatch.setenv("TICRAFT_CONFIG", str(tmp_path / "no-such-config.json"))
    assert Library.resolve().root == tmp_path / "embeddings"


def test_a_setting_that_is_not_a_path_is_one_sentence(configured: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"library": 3}))
    with pytest.raises(TicraftError, match="not a folder path"):
        Library.resolve()


def test_a_setting_naming_a_file_fails_like_library_option(configured: Path, tmp_path: Path) -> None:
    configured.write_text("not a folder")
    with pytest.raises(TicraftError, match="is a file, not a library folder"):
        Library.resolve()


def test_library_list_uses_the_setting(configured: Path) -> None:
    Library(configured).add(Concept("<set>", {"clip": torch.ones(1, 768)}))
    runner = CliRunner()
    result = runner.invoke(app, ["library", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<set>" in result.output and "1 concept in" in result.output
    result = runner.invoke(app, ["library", "path"], env={"COLUMNS": "400"})
    assert result.exit_code == 0 and result.output.strip() == str(configured)


def test_config_set_library_reaches_library_list(configured: Path, tmp_path: Path) -> None:
    """The whole path: `ticraft config set library` stores it, `ticraft library list` reads it."""
    other = tmp_path / "other"
    Library(other).add(Concept("<other>", {"clip": torch.ones(1, 768)}))
    runner = CliRunner()
    assert runner.invoke(app, ["config", "set", "library", str(other)]).exit_code == 0
    result = runner.invoke(app, ["library", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<other>" in result.output
