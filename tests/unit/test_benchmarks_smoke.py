"""The benchmarks still run, at their smallest sizes (a smoke test: no timing is asserted).

They are not part of the test run otherwise, so without this a change to the code they drive
can break them unnoticed (as variant (b)'s entry point once was).
"""

from __future__ import annotations

from benchmarks import athena, batch_transform


def test_batch_transform_benchmark_runs_and_reports_every_measure(capsys):
    # (b) needs its own virtualenv from PyPI; everything else runs.
    assert batch_transform.main(["--quick", "--repeats", "1", "--skip", "b"]) == 0

    report = capsys.readouterr().out
    for row in (
        "| (a) in-process: pyarrow -> predict -> write |",
        "| (c) local executor, 1 instance, transform service off |",
        "| (c) local executor, 1 instance |",
        "| (c) local executor, 2 instances |",
    ):
        assert row in report
    assert "Job startup without a warm transform service" in report
    assert "Peak worker RSS (MaxPayloadInMB=6)" in report  # read from the workers' log lines
    assert "(c, 2) ≥ 1.6 × (c, 1)" in report


def test_athena_benchmark_runs_and_reports_every_measure(capsys):
    # Spark is left out: its JVM start alone would double the time; it is measured by make bench.
    assert athena.main(["--quick", "--repeats", "1", "--skip", "spark"]) == 0

    report = capsys.readouterr().out
    for row in (
        "| (i) group-by | (a) DuckDB, hand-written SQL |",
        "| (i) group-by | (b) local Athena, start → SUCCEEDED |",
        "| (ii) UNLOAD by year, month | (b) local Athena, start → SUCCEEDED |",
        "| unload (Parquet, manifest) |",
    ):
        assert row in report
    assert "unload ≥ 5× faster than select" in report
