"""Timing helpers shared by the benchmark scripts (run them as ``python benchmarks/bench_*.py``)."""
import statistics
import time


def median_cpu_seconds(fn, repeats: int) -> float:
    """Median process CPU time of ``repeats`` calls of ``fn()``. CPU time, not wall time: it is far less
    sensitive to other jobs on a shared machine."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: expected >= 1")
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)
