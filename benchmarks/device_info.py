"""The device helpers every benchmark script shares: waiting for its queued work, naming it in the report.

Example:
    >>> import torch
    >>> synchronize(torch.device("cpu"))  # no-op on the CPU
    >>> device_name("cpu").startswith("cpu (") and device_name("cpu").endswith(" threads)")
    True
"""

from __future__ import annotations

import torch

__all__ = ["device_name", "synchronize"]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on the CPU).

    Example:
        >>> synchronize(torch.device("cpu"))
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_name(device: str) -> str:
    """The device as a report's ``device:`` line shows it: a GPU's name, or the CPU's torch thread count.

    ``"cuda:0 (NVIDIA H200)"``, ``"cpu (2 threads)"``; any other device (``"mps"``) as given.

    Example:
        >>> device_name("cpu") == f"cpu ({torch.get_num_threads()} threads)"
        True
        >>> device_name("mps")
        'mps'
    """
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    if device == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device
