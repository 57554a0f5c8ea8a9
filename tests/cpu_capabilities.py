"""The ATen CPU capabilities this machine runs, for re-running the numerics tests under each.

``python -m tests.cpu_capabilities`` prints, one per line, the ``ATEN_CPU_CAPABILITY`` values
that this CPU supports other than the one a plain run uses (the main ``pytest`` run covers that
one): on an AVX-512 machine ``default`` and ``avx2``, on an AVX2 one ``default``, elsewhere
``default`` unless the machine's own is already the default. ``make test`` runs
``pytest -m numerics`` once per line, so that a result that depends on the kernels cannot hide
on the machine that recorded it.
"""

from __future__ import annotations

import os
import subprocess
import sys

ENV = "ATEN_CPU_CAPABILITY"
# torch.backends.cpu.get_cpu_capability() -> the capabilities (ATEN_CPU_CAPABILITY values) the
# CPU can run, lowest first; a name not listed here (VSX, Z VECTOR, SVE256...) runs its own and
# the default kernels.
_X86 = {"DEFAULT": ["default"], "NO AVX": ["default"], "AVX2": ["default", "avx2"]}
_X86["AVX512"] = [*_X86["AVX2"], "avx512"]


def machine_capability() -> str:
    """What torch picks on this CPU without an ``ATEN_CPU_CAPABILITY`` override."""
    if ENV not in os.environ:
        import torch

        return torch.backends.cpu.get_cpu_capability()
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    env = {k: v for k, v in os.environ.items() if k != ENV}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"cannot ask torch for the CPU capability: {out.stderr.strip()}")
    return out.stdout.strip()


def other_capabilities(machine: str, current: str | None) -> list[str]:
    """The capabilities ``machine`` (a ``get_cpu_capability()`` name) supports, without
    ``current`` (the ``ATEN_CPU_CAPABILITY`` of the main run, or None for the machine's own)."""
    supported = _X86.get(machine, ["default", machine.lower().replace(" ", "")])
    used = (current or supported[-1]).lower()
    return [name for name in supported if name != used]


if __name__ == "__main__":
    print("\n".join(other_capabilities(machine_capability(), os.environ.get(ENV))))
