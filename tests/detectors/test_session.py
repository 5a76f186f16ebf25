from __future__ import annotations

import logging
import os
from pathlib import Path

import onnxruntime
import pytest

from core.errors import ModelError
from detectors.session import CPU, cgroup_cpu_limit, choose_providers, create_session, default_workers, usable_cores

CUDA = "CUDAExecutionProvider"

CHOICES = [
    # asked, available, chosen, reason contains
    ([CPU], [CPU], [CPU], "all asked providers are available"),
    ([CUDA, CPU], [CPU], [CPU], f"not available in this onnxruntime build: {CUDA}"),
    ([CUDA], [CUDA, CPU], [CUDA, CPU], f"{CPU} added as the fallback"),
    ([CPU, CUDA], [CUDA, CPU], [CUDA, CPU], "all asked"),
]


@pytest.mark.parametrize(("asked", "available", "chosen", "reason"), CHOICES)
def test_choose_providers(asked: list[str], available: list[str], chosen: list[str], reason: str) -> None:
    got, why = choose_providers(asked, available)

    assert got == chosen
    assert reason in why


def test_asking_for_cuda_on_this_machine_falls_back_to_cpu_and_says_why(
    yolox_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if CUDA in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA")
    caplog.set_level(logging.INFO, logger="detectors.session")

    session = create_session(yolox_path, providers=(CUDA,))

    assert session.get_providers() == [CPU]
    [record] = [r for r in caplog.records if r.name == "detectors.session"]
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert f"asked ['{CUDA}']" in message
    assert f"chose ['{CPU}']" in message
    assert f"not available in this onnxruntime build: {CUDA}" in message


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file missing"):
        create_session(tmp_path / "absent.onnx")


def test_a_file_that_is_not_onnx(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a graph")

    with pytest.raises(ModelError, match="onnxruntime cannot load it"):
        create_session(junk)


@pytest.mark.parametrize(
    ("providers", "threads", "cores", "workers"),
    [
        ([CPU], 1, 16, 16),
        ([CPU], 2, 16, 8),
        ([CPU], 4, 2, 1),
        (["CUDAExecutionProvider", CPU], 1, 16, 2),
        (["TensorrtExecutionProvider", "CUDAExecutionProvider", CPU], 1, 64, 2),
        ([], 1, 4, 4),
    ],
)
def test_default_workers(providers: list[str], threads: int, cores: int, workers: int) -> None:
    assert default_workers(providers, threads, cores) == workers


@pytest.mark.parametrize(
    ("text", "limit"),
    [("max 100000\n", None), ("200000 100000\n", 2), ("150000 100000\n", 2), ("50000 100000\n", 1), ("junk", None)],
)
def test_cgroup_cpu_quota_is_read_in_whole_cpus(tmp_path: Path, text: str, limit: int | None) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(text)

    assert cgroup_cpu_limit(cpu_max) == limit
    assert cgroup_cpu_limit(tmp_path / "missing") is None


def test_usable_cores_are_capped_by_the_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")

    assert usable_cores(cpu_max) == 1
    assert usable_cores(tmp_path / "missing") == len(os.sched_getaffinity(0))
