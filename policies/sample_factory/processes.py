"""Sample Factory's worker processes end when their parent does.

SF 2.1.1 starts the learner, inference and rollout workers as ``spawn`` processes that wait on queues for
the main process. If that process is killed (``kill -9``, the OOM killer) nobody tells them to stop, and
they run on forever, holding their memory, along with multiprocessing's resource tracker (it exits once
every holder of its pipe is gone). :func:`install_worker_parent_guard` makes each worker ask the kernel for
a ``SIGKILL`` when its parent dies (``prctl(PR_SET_PDEATHSIG)`` on Linux; elsewhere a thread that watches
the parent pid), by wrapping the three init functions SF passes to its worker processes.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

import sample_factory.algo.runners.runner_parallel as runner_parallel
import sample_factory.algo.sampling.sampler as sampler
from sample_factory.algo.learning.learner_worker import init_learner_process
from sample_factory.algo.sampling.inference_worker import init_inference_process
from sample_factory.algo.sampling.rollout_worker import init_rollout_worker_process

PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def die_with_parent() -> None:
    """End this process as soon as the process that started it has died (called first in each SF worker)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch_parent, args=(parent.pid,), daemon=True, name="parent-watch").start()
    if os.getppid() != parent.pid:  # the parent died before the request was made
        os._exit(1)


def _watch_parent(parent_pid: int, every_s: float = 1.0) -> None:
    while os.getppid() == parent_pid:
        time.sleep(every_s)
    os._exit(1)


# SF's init functions with die_with_parent() first: module-level, so that spawn pickles them by name
def guarded_init_learner_process(*args, **kwargs):
    die_with_parent()
    return init_learner_process(*args, **kwargs)


def guarded_init_inference_process(*args, **kwargs):
    die_with_parent()
    return init_inference_process(*args, **kwargs)


def guarded_init_rollout_worker_process(*args, **kwargs):
    die_with_parent()
    return init_rollout_worker_process(*args, **kwargs)


def install_worker_parent_guard() -> None:
    """Make SF start its worker processes with :func:`die_with_parent` (patches the names SF reads when it
    creates them; safe to call more than once)."""
    runner_parallel.init_learner_process = guarded_init_learner_process
    sampler.init_inference_process = guarded_init_inference_process
    sampler.init_rollout_worker_process = guarded_init_rollout_worker_process
