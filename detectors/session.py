"""ONNX Runtime sessions: providers from config, filtered to what this build offers, CPU as the fallback."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import onnxruntime
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from core.errors import ModelError

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
# providers whose runs happen on an accelerator: there, batching pays and two concurrent runs are enough
GPU_PROVIDERS = frozenset(
    {
        "CUDAExecutionProvider",
        "TensorrtExecutionProvider",
        "ROCMExecutionProvider",
        "MIGraphXExecutionProvider",
        "DmlExecutionProvider",
    }
)

# what onnxruntime raises for a file that is not a loadable graph
LOAD_ERRORS = (ort_errors.Fail, ort_errors.InvalidProtobuf, ort_errors.InvalidGraph, ort_errors.NoSuchFile)


def choose_providers(asked: Sequence[str], available: Sequence[str]) -> tuple[list[str], str]:
    """The providers to use, in the asked order, CPU always last; and why, in words."""
    chosen = [p for p in asked if p in available and p != CPU]
    missing = [p for p in asked if p not in available]
    chosen.append(CPU)
    if missing:
        reason = f"not available in this onnxruntime build: {', '.join(missing)}"
    elif CPU not in asked:
        reason = f"{CPU} added as the fallback"
    else:
        reason = "all asked providers are available"
    return chosen, reason


def create_session(
    model_path: Path,
    providers: Sequence[str] = (CPU,),
    intra_op_threads: int = 1,
) -> onnxruntime.InferenceSession:
    """An inference session on the asked providers that exist here (CPU otherwise), with full graph
    optimisation and `intra_op_threads` threads per operator."""
    if not model_path.is_file():
        raise ModelError(f"{model_path}: model file missing")
    available = onnxruntime.get_available_providers()
    chosen, reason = choose_providers(providers, available)
    logger.info(
        "onnxruntime session for %s: asked %s, available %s, chose %s (%s)",
        model_path.name,
        list(providers),
        list(available),
        chosen,
        reason,
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=chosen)
    except LOAD_ERRORS as exc:
        raise ModelError(f"{model_path}: onnxruntime cannot load it: {exc}") from exc


def default_workers(providers: Sequence[str], intra_op_threads: int, cores: int) -> int:
    """Concurrent inference runs when the settings leave it open. On CPU, one per `intra_op_threads` cores
    (measured: concurrent single-threaded runs beat one run with several intra-op threads, see
    docs/benchmarks.md); on a GPU two, so one batch is prepared and decoded while the other runs."""
    if providers and providers[0] in GPU_PROVIDERS:
        return 2
    return max(1, cores // max(1, intra_op_threads))


def cgroup_cpu_limit(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """Whole CPUs a cgroup v2 quota allows (`docker --cpus`, Kubernetes limits), rounded up; None without one."""
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may use: its CPU affinity (`taskset`, `--cpuset-cpus`), capped by a cgroup CPU quota."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = cgroup_cpu_limit(cpu_max)
    return min(affinity, limit) if limit is not None else affinity
