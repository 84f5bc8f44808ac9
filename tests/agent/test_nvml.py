# ruff: noqa: N802  (the stand-in spells pynvml's function names)
"""The NVML backend, driven by a stand-in for `pynvml` whose names and parameters are
checked against the real module (so the stand-in cannot drift from what the backend will
meet on a GPU node); and `--backend nvml|auto` on a machine without a GPU driver, which must
fail with one clear line, not a traceback. The real NVML path runs only on a GPU machine."""

from __future__ import annotations

import inspect
import types
from typing import Any, cast

import pynvml  # type: ignore[import-untyped]
import pytest

from neocloud.metering.agent import nvml
from neocloud.metering.agent.gpus import BackendUnavailable, GpuFault, GpuReading
from neocloud.metering.agent.nvml import NvmlApi, NvmlBackend
from tests.agent.conftest import agent


class NVMLError(Exception):
    """Like pynvml's: the message is NVML's own string for the error code."""


def standin(gpus: int, lost: frozenset[int] = frozenset(), init_error: str | None = None) -> Any:
    """A module shaped like `pynvml`: GPU i uses 10*i % utilization, (i+1) GiB, 300 W + i,
    50 + i degrees; the `lost` GPUs fail every read."""
    calls: list[str] = []
    module = types.ModuleType("pynvml_standin")

    def device(handle: int) -> int:
        if handle in lost:
            raise NVMLError("GPU is lost")
        return handle

    def nvmlInit() -> None:
        calls.append("init")
        if init_error:
            raise NVMLError(init_error)

    def nvmlShutdown() -> None:
        calls.append("shutdown")

    def nvmlDeviceGetCount() -> int:
        return gpus

    def nvmlDeviceGetHandleByIndex(index: int) -> int:
        return index

    def nvmlDeviceGetUtilizationRates(handle: int) -> Any:
        return types.SimpleNamespace(gpu=10 * device(handle), memory=0)

    def nvmlDeviceGetMemoryInfo(handle: int, version: int | None = None) -> Any:
        used = (device(handle) + 1) << 30
        return types.SimpleNamespace(used=used, total=80 << 30, free=(80 << 30) - used)

    def nvmlDeviceGetPowerUsage(handle: int) -> int:
        return (300 + device(handle)) * 1000

    def nvmlDeviceGetTemperature(handle: int, sensor: int) -> int:
        assert sensor == module.NVML_TEMPERATURE_GPU
        return 50 + device(handle)

    for fn in (
        nvmlInit,
        nvmlShutdown,
        nvmlDeviceGetCount,
        nvmlDeviceGetHandleByIndex,
        nvmlDeviceGetUtilizationRates,
        nvmlDeviceGetMemoryInfo,
        nvmlDeviceGetPowerUsage,
        nvmlDeviceGetTemperature,
    ):
        setattr(module, fn.__name__, fn)
    module.NVMLError = NVMLError  # type: ignore[attr-defined]
    module.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
    module.calls = calls  # type: ignore[attr-defined]
    return module


def test_the_standin_has_the_real_pynvml_names_and_parameters() -> None:
    fake = standin(1)
    for name in nvml.USED:
        real = inspect.signature(getattr(pynvml, name)).parameters
        mine = inspect.signature(getattr(fake, name)).parameters
        assert list(real) == list(mine), name
    assert issubclass(pynvml.NVMLError, Exception)
    assert fake.NVML_TEMPERATURE_GPU == pynvml.NVML_TEMPERATURE_GPU
    # The fields the backend reads are the C structs' own.
    assert "gpu" in dict(pynvml.c_nvmlUtilization_t._fields_)
    assert "used" in dict(pynvml.c_nvmlMemory_t._fields_)


def test_readings_in_the_units_of_the_telemetry_events() -> None:
    module = standin(3)
    backend = NvmlBackend(cast(NvmlApi, module))
    assert backend.gpu_count() == 3
    assert backend.read(0) == [
        GpuReading(0, 0.0, 1024, 300.0, 50.0),
        GpuReading(1, 10.0, 2048, 301.0, 51.0),
        GpuReading(2, 20.0, 3072, 302.0, 52.0),
    ]
    backend.close()
    assert module.calls == ["init", "shutdown"]


def test_a_gpu_that_fails_a_read_is_a_fault_and_the_others_are_read() -> None:
    backend = NvmlBackend(cast(NvmlApi, standin(4, lost=frozenset({2}))))
    out = backend.read(0)
    assert [type(r) for r in out] == [GpuReading, GpuReading, GpuFault, GpuReading]
    assert out[2] == GpuFault(2, "NVML: GPU is lost")


def test_nvml_that_does_not_start_or_sees_no_gpu_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="NVML did not start: Driver Not Loaded"):
        NvmlBackend(cast(NvmlApi, standin(1, init_error="Driver Not Loaded")))
    module = standin(0)
    with pytest.raises(BackendUnavailable, match="sees no GPU"):
        NvmlBackend(cast(NvmlApi, module))
    assert module.calls == ["init", "shutdown"]


def test_the_real_pynvml_on_this_gpu_less_machine_fails_in_one_clear_line() -> None:
    try:  # a machine with a driver cannot show the failure
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("NVML starts on this machine")
    for backend in ("nvml", "auto"):
        code, out = agent("http://127.0.0.1:9", "--node", "n1", "--backend", backend, "--once")
        assert code == 2, out
        assert "Traceback" not in out
        assert "NVML did not start" in out and "driver" in out
    code, out = agent("http://127.0.0.1:9", "--backend", "auto", "--once")
    assert "use --backend fake" in out
