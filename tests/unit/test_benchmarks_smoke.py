"""The benchmarks still run, at their smallest sizes (a smoke test: no timing is asserted).

They are not part of the test run otherwise, so without this a change to the code they drive
can break them unnoticed (as variant (b)'s entry point once was).
"""

from __future__ import annotations

import pytest
from benchmarks import athena, batch_transform, local_s3

SMOKE_RUNS = {
    # (b) needs its own virtualenv from PyPI; everything else runs.
    "batch_transform": (
        batch_transform,
        ["--quick", "--repeats", "1", "--skip", "b"],
        [
            "| (a) in-process: pyarrow -> predict -> write |",
            "| (c) local executor, 1 instance, transform service off |",
            "| (c) local executor, 1 instance |",
            "| (c) local executor, 2 instances |",
            "| (c) local executor, 1 instance, one vCPU (OMP_NUM_THREADS=1) |",
            "Job startup without a warm transform service",
            "Peak worker RSS (MaxPayloadInMB=6)",  # read from the workers' log lines
            "(c, 2) ≥ 1.6 × (c, 1):",
            "(c, 2) ≥ 1.6 × (c, 1) at one vCPU per instance:",
        ],
    ),
    "local_s3": (
        local_s3,
        ["--quick"],
        [
            "| put_object |",
            "| head_object |",
            "| get_object + read |",
            "| list_objects_v2, one page |",
        ],
    ),
    # Spark is left out: its JVM start alone would double the time; make bench measures it.
    "athena": (
        athena,
        ["--quick", "--repeats", "1", "--skip", "spark"],
        [
            "| (i) group-by | (a) DuckDB, hand-written SQL |",
            "| (i) group-by | (b) local Athena, start → SUCCEEDED |",
            "| (ii) UNLOAD by year, month | (b) local Athena, start → SUCCEEDED |",
            "| unload (Parquet, manifest) |",
            "unload ≥ 5× faster than select",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(SMOKE_RUNS))
def test_benchmark_runs_and_reports_every_measure(name, capsys):
    module, argv, expected = SMOKE_RUNS[name]

    assert module.main(argv) == 0

    report = capsys.readouterr().out
    missing = [line for line in expected if line not in report]
    assert not missing, f"{name} no longer reports {missing}:\n{report}"
