# ruff: noqa: N802  (the protocol spells pynvml's own function names)
"""The NVML backend (nvidia-ml-py, imported as `pynvml`), for nodes with NVIDIA GPUs.

`pynvml` is imported only when this backend starts, so machines without the driver (CI, a
laptop running the demo) still run the fake backend. The backend reads the module through
the `NvmlApi` protocol below, which names exactly the functions it calls; tests drive it with
a stand-in module of the same shape, and a test checks that every name exists in the real
`pynvml` with the same parameters.
"""

from __future__ import annotations

import importlib
import logging
from typing import Protocol, cast

from neocloud.metering.agent.gpus import BackendUnavailable, GpuFault, GpuReading

log = logging.getLogger(__name__)
MIB = 1024 * 1024


class Utilization(Protocol):
    gpu: int
    """Percent of the last sample period during which a kernel ran."""


class Memory(Protocol):
    used: int
    """Bytes."""


class NvmlApi(Protocol):
    """The part of `pynvml` the backend uses."""

    NVMLError: type[Exception]
    NVML_TEMPERATURE_GPU: int

    def nvmlInit(self) -> None: ...

    def nvmlShutdown(self) -> None: ...

    def nvmlDeviceGetCount(self) -> int: ...

    def nvmlDeviceGetHandleByIndex(self, index: int) -> object: ...

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> Utilization: ...

    def nvmlDeviceGetMemoryInfo(self, handle: object) -> Memory: ...

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        """Milliwatts."""
        ...

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int: ...


USED = (
    "nvmlInit",
    "nvmlShutdown",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetTemperature",
)
"""The functions of `pynvml` the backend calls (checked against the real module in tests)."""


def load_pynvml() -> NvmlApi:
    """The real `pynvml` module, or BackendUnavailable if nvidia-ml-py is not installed."""
    try:
        module = importlib.import_module("pynvml")
    except ImportError as exc:
        raise BackendUnavailable(
            "NVML: nvidia-ml-py is not installed (pip install nvidia-ml-py)"
        ) from exc
    return cast(NvmlApi, module)


class NvmlBackend:
    """Every GPU NVML sees on this machine. Starting it initialises NVML; `close` shuts it
    down. A GPU whose read fails this round is a fault; the others are still read."""

    name = "nvml"

    def __init__(self, nvml: NvmlApi | None = None) -> None:
        self._nvml = nvml if nvml is not None else load_pynvml()
        try:
            self._nvml.nvmlInit()
        except self._nvml.NVMLError as exc:
            raise BackendUnavailable(
                f"NVML did not start: {exc} (is the NVIDIA driver installed and loaded?)"
            ) from exc
        try:
            self._count = self._nvml.nvmlDeviceGetCount()
        except self._nvml.NVMLError as exc:
            self._shutdown()
            raise BackendUnavailable(f"NVML cannot count the GPUs: {exc}") from exc
        if self._count < 1:
            self._shutdown()
            raise BackendUnavailable("NVML started but sees no GPU on this machine")

    def gpu_count(self) -> int:
        return self._count

    def read(self, at: int) -> list[GpuReading | GpuFault]:
        return [self._read(gpu) for gpu in range(self._count)]

    def close(self) -> None:
        self._shutdown()

    def _read(self, gpu: int) -> GpuReading | GpuFault:
        nvml = self._nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(gpu)
            utilization = nvml.nvmlDeviceGetUtilizationRates(handle).gpu
            memory = nvml.nvmlDeviceGetMemoryInfo(handle).used
            power_mw = nvml.nvmlDeviceGetPowerUsage(handle)
            temperature = nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
        except nvml.NVMLError as exc:
            return GpuFault(gpu, f"NVML: {exc}")
        return GpuReading(
            gpu=gpu,
            utilization_pct=float(min(max(utilization, 0), 100)),
            memory_used_mib=int(memory) // MIB,
            power_w=power_mw / 1000.0,
            temperature_c=float(temperature),
        )

    def _shutdown(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as exc:
            log.warning("NVML shutdown failed: %s", exc)
