"""Benchmark: the local S3 client's object operations against the file system they run on.

Every local S3 operation is a file operation plus bookkeeping (botocore's parameter validation,
the ETag and metadata kept in SQLite, AWS-shaped responses). The baseline is the bare file
operation the same object needs, timed in the same run on the same disk:

- ``put_object``: write a temporary file and ``os.replace`` it into place (an atomic write);
- ``head_object``: ``os.stat``;
- ``get_object`` + read: open and read the file;
- ``list_objects_v2`` (one page of every key): walk the folder and ``os.stat`` each file, sorted.

Run from the repository root: ``python -m benchmarks local_s3 [--quick] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import report

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "local_s3"
BUCKET = "kedro-aws-bench"
BODY = os.urandom(4096)  # a small object: the bookkeeping, not the bytes, is measured


@dataclass(frozen=True)
class Size:
    name: str
    objects: int
    repeats: int


FULL = Size("full", 1000, 7)
QUICK = Size("quick", 100, 1)


@dataclass
class Measure:
    operation: str
    objects: int
    local_s3: list[float]
    file_system: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.local_s3) / statistics.median(self.file_system)

    def per_object_ms(self, seconds: list[float]) -> float:
        return 1000 * statistics.median(seconds) / self.objects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks local_s3")
    parser.add_argument("--quick", action="store_true", help="100 objects, one repeat")
    parser.add_argument("--repeats", type=int, help="repeats per operation (median reported)")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    repeats = args.repeats or size.repeats
    print(f"Local S3 benchmark, {size.name}: {size.objects:,} objects of {len(BODY):,} bytes, "
          f"{repeats} repeat(s).", flush=True)  # fmt: skip

    shutil.rmtree(DATA / size.name, ignore_errors=True)
    measures = run(DATA / size.name, size.objects, repeats)
    print()
    print(render(measures, size, repeats))
    path = report.save(
        DATA / "results",
        f"local_s3-{size.name}",
        {
            "objects": size.objects,
            "repeats": repeats,
            "measures": [
                {
                    "operation": m.operation,
                    "local_s3_seconds": m.local_s3,
                    "file_system_seconds": m.file_system,
                    "ratio": m.ratio,
                }
                for m in measures
            ],
        },
    )
    print(f"\nSaved {path.relative_to(HERE.parent)}")
    shutil.rmtree(DATA / size.name, ignore_errors=True)
    return 0


def run(scratch: Path, objects: int, repeats: int) -> list[Measure]:
    """Each operation over ``objects`` keys, local S3 and file system interleaved per repeat."""
    from kedro_aws import client

    s3 = client("s3", backend="local", root=scratch / "root", region="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    folder = scratch / "plain" / "objects"
    folder.mkdir(parents=True)
    keys = [f"objects/part-{index:05d}" for index in range(objects)]
    paths = [folder / key.split("/")[1] for key in keys]

    def put_local() -> None:
        for key in keys:
            s3.put_object(Bucket=BUCKET, Key=key, Body=BODY)

    def put_plain() -> None:
        for path in paths:
            with tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
                tmp.write(BODY)
            os.replace(tmp.name, path)

    def head_local() -> None:
        for key in keys:
            s3.head_object(Bucket=BUCKET, Key=key)

    def head_plain() -> None:
        for path in paths:
            os.stat(path)

    def get_local() -> None:
        for key in keys:
            s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def get_plain() -> None:
        for path in paths:
            path.read_bytes()

    def list_local() -> None:
        page = s3.list_objects_v2(Bucket=BUCKET, Prefix="objects/", MaxKeys=1000)
        assert page["KeyCount"] == min(objects, 1000)

    def list_plain() -> None:
        entries = sorted((entry.name, entry.stat().st_size) for entry in os.scandir(folder))
        assert len(entries) == objects

    operations: list[tuple[str, Callable[[], None], Callable[[], None]]] = [
        ("put_object", put_local, put_plain),
        ("head_object", head_local, head_plain),
        ("get_object + read", get_local, get_plain),
        ("list_objects_v2, one page", list_local, list_plain),
    ]
    measures = []
    for name, local, plain in operations:
        local()  # untimed: creates the objects (put) and warms the page cache
        plain()
        measure = Measure(name, 1 if name.startswith("list") else objects, [], [])
        for repeat in range(repeats):
            # Alternating which goes first, so a slow spell of the machine hits both alike.
            for variant in ("local", "plain") if repeat % 2 == 0 else ("plain", "local"):
                start = time.perf_counter()
                (local if variant == "local" else plain)()
                seconds = time.perf_counter() - start
                (measure.local_s3 if variant == "local" else measure.file_system).append(seconds)
        measures.append(measure)
        print(f"  {name}: {measure.ratio:.1f}× the file system", flush=True)
    return measures


def render(measures: list[Measure], size: Size, repeats: int) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}",
        f"Command: python -m benchmarks local_s3{' --quick' if size is QUICK else ''} "
        f"({size.objects:,} objects of {len(BODY):,} bytes, median of {repeats})",
        "",
        "| operation | local S3, ms per call | file system, ms | local S3 / file system |",
        "|---|---:|---:|---:|",
    ]
    for m in measures:
        lines.append(
            f"| {m.operation} | {m.per_object_ms(m.local_s3):.3f} | "
            f"{m.per_object_ms(m.file_system):.3f} | {m.ratio:.1f}× |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
