"""`gridwatch cameras import` and `export` as a user runs them: exit codes, summaries, files and modes."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from gridwatch.cli import _terminal_progress, main

V1 = "id,name,url,gb_device_id\na,东门,rtsp://admin:${A_PW}@10.0.0.1/s,34020000001320000001\nb,,rtsp://10.0.0.2/s,\n"
V2 = "id,name,url,gb_device_id\na,东门,rtsp://admin:${A_PW}@10.0.0.1/s,123\nc,,rtsp://10.0.0.3/s,\n"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    return folder


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_prints_what_changed(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cameras", "import", str(_csv(tmp_path, "v1.csv", V1)), "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert "2 cameras from" in out.out and "2 added, 0 changed, 0 removed, 0 unchanged" in out.out
    assert out.err == ""  # no warnings, and no progress display: stderr is not a terminal
    v2 = _csv(tmp_path, "v2.csv", V2)
    assert main(["cameras", "import", str(v2), "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert "1 added, 1 changed, 1 removed, 0 unchanged (1 warning(s)" in out.out
    assert out.err == f"{v2}:2:gb_device_id: warning: GB/T 28181 id '123' has 3 digits, expected 20\n"


def test_a_file_with_errors_is_refused_whole(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["cameras", "import", str(_csv(tmp_path, "v1.csv", V1)), "--config", str(config)])
    before = (config / "cameras.yaml").read_bytes()
    capsys.readouterr()
    bad = _csv(tmp_path, "bad.csv", "id,url,colour\nx,rtsp://u:hunter2@h/1,red\n")
    assert main(["cameras", "import", str(bad), "--config", str(config)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{bad}:1:colour: unknown column")
    assert err[-1] == f"{bad}: refused, 1 problem(s); cameras.yaml left as it was"
    assert (config / "cameras.yaml").read_bytes() == before


def test_export_round_trips_and_keeps_env_references(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["cameras", "import", str(_csv(tmp_path, "v1.csv", V1)), "--config", str(config)])
    capsys.readouterr()
    assert main(["cameras", "export", "--config", str(config)]) == 0
    exported = capsys.readouterr().out
    assert exported.startswith("id,name,url,") and "rtsp://admin:${A_PW}@10.0.0.1/s" in exported
    out = tmp_path / "fleet.yaml"
    assert main(["cameras", "export", "--config", str(config), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == (config / "cameras.yaml").read_text(encoding="utf-8")
    assert capsys.readouterr().err == f"{out}: 2 cameras as yaml\n"


def test_export_refuses_literal_passwords_unless_asked(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _csv(tmp_path, "c.csv", "id,url\na,rtsp://admin:hunter2@10.0.0.1/s\n")
    assert main(["cameras", "import", str(source), "--config", str(config)]) == 0
    out = tmp_path / "out.csv"
    assert main(["cameras", "export", "--config", str(config), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err
    assert f"{config / 'cameras.yaml'}:3:10: cameras[0].url: rtsp://***@10.0.0.1/s" in captured.err
    assert not out.exists()
    assert main(["cameras", "export", "--config", str(config), "-o", str(out), "--include-credentials"]) == 0
    assert "hunter2" in out.read_text(encoding="utf-8")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "hunter2" not in capsys.readouterr().err


def test_progress_is_drawn_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert _terminal_progress() is None  # pytest's stderr is no terminal
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    show = _terminal_progress()
    assert show is not None
    show("validating", 1000, 2000)
    show("validating", 2000, 2000)
    show("writing", 0, 0)
    assert (
        screen.getvalue()
        == "\r\x1b[Kvalidating: 1,000 / 2,000 rows\r\x1b[Kvalidating: 2,000 / 2,000 rows\r\x1b[Kwriting ..."
    )


def test_a_missing_folder_is_an_error_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _csv(tmp_path, "v1.csv", V1)
    assert main(["cameras", "import", str(source), "--config", str(tmp_path / "nowhere")]) == 2
    assert (
        capsys.readouterr().err
        == f"gridwatch: {tmp_path / 'nowhere' / 'cameras.yaml'}: cannot write: No such file or directory\n"
    )
    assert main(["cameras", "export", "--config", str(tmp_path / "nowhere")]) == 2
    assert "cameras.yaml:1:1: cannot read: No such file or directory" in capsys.readouterr().err
