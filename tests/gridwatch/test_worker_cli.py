"""`gridwatch worker`: its flags, and the errors that point at the missing piece."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwatch.cli import build_parser, main
from tests.e2e.test_patrol_rtsp import free_port


def test_worker_takes_a_config_and_a_redis_url(tmp_path: Path) -> None:
    args = build_parser().parse_args(["worker", "--config", str(tmp_path), "--redis", "redis://127.0.0.1:6379/0"])
    assert args.config == tmp_path and args.redis == "redis://127.0.0.1:6379/0"


def test_worker_without_redis_says_what_it_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--config", str(tmp_path)]) == 2
    assert "--redis URL" in capsys.readouterr().err


def test_worker_with_redis_away_names_it_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    assert main(["worker", "--config", str(tmp_path), "--redis", url]) == 2
    err = capsys.readouterr().err
    assert "redis://***@127.0.0.1" in err and "hunter2" not in err
