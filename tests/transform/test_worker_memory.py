"""A transform worker keeps the memory its mini-batches free for the next ones (glibc only)."""

from __future__ import annotations

import os
import resource
import sys

import numpy as np
import pytest

from kedro_aws.local import transform_job

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only"
)


def _minor_faults_of_mini_batch_cycles(keep_freed_memory: bool) -> int:
    """Page faults of 10 alloc/free cycles of 3 x 8 MiB arrays, in a forked child."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            if keep_freed_memory:
                transform_job._keep_freed_memory()

            def cycle() -> None:
                arrays = [np.ones(1 << 20) for _ in range(3)]  # 8 MiB each, pages touched
                del arrays

            cycle()  # the first one faults its pages in, whatever the settings
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(10):
                cycle()
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
            os.write(write_end, str(faults).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as result:
        faults = int(result.read())
    os.waitpid(pid, 0)
    return faults


def test_freed_mini_batch_memory_is_reused_without_page_faults():
    # Three 8 MiB arrays freed together leave 24 MiB at the top of the heap; glibc's defaults
    # unmap or trim it, so every cycle faults ~6,000 pages in again. Kept, it costs none.
    faults = _minor_faults_of_mini_batch_cycles(keep_freed_memory=True)
    assert faults < 1_000, faults
