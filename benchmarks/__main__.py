"""Run the benchmarks: ``python -m benchmarks [NAME] [options]`` from the repository root.

``NAME`` is one of ``BENCHMARKS`` (default: all of them); the options go to the benchmark,
e.g. ``python -m benchmarks batch_transform --quick``. Every benchmark reports ratios against a
baseline measured in the same run (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import importlib
import sys

# name -> module with a ``main(argv) -> int``
BENCHMARKS = {
    "batch_transform": "benchmarks.batch_transform",
    "athena": "benchmarks.athena",
    "local_s3": "benchmarks.local_s3",
}


def main(argv: list[str]) -> int:
    names = [argv.pop(0)] if argv and not argv[0].startswith("-") else list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"Unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}.")
        return 2
    status = 0
    for name in names:
        status |= importlib.import_module(BENCHMARKS[name]).main(list(argv))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
