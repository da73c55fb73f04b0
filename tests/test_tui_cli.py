"""`ticraft tui`: option wiring (the app's run() is replaced: CliRunner has no terminal)."""

from __future__ import annotations

from pathlib import Path

import pytest
import textual  # noqa: F401 (in the test extra: missing is a failure, not a skip)
from typer.testing import CliRunner

from ticraft.cli.main import app  # noqa: E402


def test_tui_command_wires_library_model_and_screen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ticraft_tui.app import TicraftApp

    seen: dict[str, object] = {}

    def fake_run(self: TicraftApp) -> None:
        seen.update(root=self.backend.library.root, model=self.backend.model_spec, start=self._start)

    monkeypatch.setattr(TicraftApp, "run", fake_run)
    from ticraft_tui.widgets import thumbnail

    monkeypatch.setattr(thumbnail, "_MODE", "auto")
    result = CliRunner().invoke(app, ["tui", "--library", str(tmp_path / "lib"), "--model", "toy",
                                      "--screen", "compose", "--images", "halfcell"])
    assert result.exit_code == 0, result.output
    assert seen == {"root": (tmp_path / "lib").absolute(), "model": "toy", "start": "compose"}
    assert thumbnail.image_mode() == "halfcell"


@pytest.mark.parametrize(("args", "message"), [
    (["--screen", "nowhere"], "--screen must be one of library, compose, train, map"),
    (["--images", "sixels"], "image mode must be one of auto, halfcell, unicode"),
])
def test_tui_command_rejects_bad_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["tui", *args])
    assert result.exit_code == 2
    flat = " ".join(result.output.replace("│", " ").split())  # Rich wraps the message in a box
    assert message in flat
