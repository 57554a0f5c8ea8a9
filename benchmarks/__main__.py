"""Run the benchmarks: ``python -m benchmarks [NAME ...]`` (NAME = bench_<NAME>.py).

Each ``benchmarks/bench_*.py`` has a ``main() -> None`` that measures the project's code and its
baseline in the same run and prints the figures and their ratio.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import benchmarks


def main(names: list[str]) -> None:
    found = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    chosen = [n for n in found if not names or n.removeprefix("bench_") in names or n in names]
    if not chosen:
        sys.exit(f"no benchmark named {names}; have {[n.removeprefix('bench_') for n in found]}")
    for name in chosen:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
