"""The machine: which device to use (`pick_device`), whether bf16 is native on it (`native_bf16`), and what
a measurement ran on, in one line (`describe`: CPU model, cores, vector instructions, bf16 units, threads,
and the GPU if used).

Every number gankit's benchmarks publish names its machine with `describe()`; `bf16_units()` is the one
reading of /proc/cpuinfo that decides whether bf16 is native on this CPU.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import List, Optional

import torch

from gankit.registry import GankitError


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _flags() -> set:
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def bf16_units() -> List[str]:
    """The CPU's native bf16 instruction sets: 'amx_bf16' (Intel AMX tiles), 'avx512_bf16' or none."""
    flags = _flags()
    return [f for f in ("amx_bf16", "avx512_bf16") if f in flags]


def vector_isa() -> str:
    """The widest x86 vector instructions the CPU has ('AVX-512', 'AVX2', 'AVX', 'SSE'), or '' elsewhere: two
    CPUs of one model name (AMD EPYC, say) can differ here, and fp32 speed follows it."""
    flags = _flags()
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse2", "SSE")):
        if flag in flags:
            return name
    return ""


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_memory() -> int:
    """Bytes of memory available to a new allocation without swapping (MemAvailable; else free pages)."""
    for line in Path("/proc/meminfo").read_text().splitlines() if Path("/proc/meminfo").is_file() else ():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume it fits
        return 1 << 62


def describe(device: Optional[torch.device] = None) -> str:
    """e.g. 'AMD EPYC, 2 cores, AVX-512, bf16 units: avx512_bf16, 2 threads, torch 2.14.1'."""
    units, isa = bf16_units(), vector_isa()
    threads = torch.get_num_threads()
    line = (f"{cpu_model()}, {cores()} cores, {isa + ', ' if isa else ''}"
            f"bf16 units: {', '.join(units) if units else 'none'}, "
            f"{threads} thread{'' if threads == 1 else 's'}, torch {torch.__version__}")
    if device is not None and torch.device(device).type == "cuda":
        line = f"{torch.cuda.get_device_name(torch.device(device))} (CUDA {torch.version.cuda}); host {line}"
    return line


def pick_device(name: str = "auto") -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'; a device that is not here is a
    one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GankitError(f"device '{name}' is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"device {name} asked for, but CUDA is not available here; use cpu (or auto)")
    return device


def native_bf16(device: torch.device) -> bool:
    """bf16 with hardware support on `device`: bf16 units on a CPU; on CUDA, compute capability 8.0+ asked
    for that device (torch's default also counts emulation, as on V100/T4, which is slower than fp32)."""
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    return bool(bf16_units())
