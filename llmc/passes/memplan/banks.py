"""Bank rules from the hardware spec: a banked scratchpad (``[scratchpad]``
``banks``, in ``llmc/hw`` device files) splits its capacity into equal
banks; a plan may keep each buffer on a bank boundary (``"start"``) or
inside as few banks as its size needs (``"within"``), so that a backend can
give each operand its own banks' ports."""

from __future__ import annotations

from dataclasses import replace

from llmc.errors import UsageError
from llmc.hw.device import Device
from llmc.passes.memplan.problem import BANK_RULES, Problem


def bank_bytes_of(device: Device) -> int:
    """Bytes per bank of the device's scratchpad (capacity / banks)."""
    sp = device.scratchpad
    if sp is None or not sp.banked or not sp.banks:
        raise UsageError(f"device {device.name!r} has no banked scratchpad "
                         "([scratchpad] banks = ... in its device file)")
    return sp.capacity_bytes // sp.banks


def with_banks(problem: Problem, bank_bytes: int, rule: str) -> Problem:
    """``problem`` with every buffer under bank rule ``rule`` in banks of
    ``bank_bytes``."""
    if rule not in BANK_RULES:
        raise UsageError(f"unknown bank rule {rule!r}; use one of {BANK_RULES}")
    return Problem([replace(b, bank=rule) for b in problem.buffers], problem.alignment,
                   bank_bytes)
