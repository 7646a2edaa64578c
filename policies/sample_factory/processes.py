"""Sample Factory's worker processes end when their parent does.

SF 2.1.1 starts the learner, inference and rollout workers as ``spawn`` processes that wait on queues for
the main process. If that process is killed (``kill -9``, the OOM killer) nobody tells them to stop, and
they run on forever, holding their memory, along with multiprocessing's resource tracker (it exits once
every holder of its pipe is gone). :func:`install_worker_parent_guard` makes each worker watch its parent
and exit when it is gone, by wrapping the three init functions SF passes to its worker processes.

Why a watcher thread and not ``prctl(PR_SET_PDEATHSIG)``: the kernel ties that signal to the parent *thread*,
and SF starts its inference and rollout workers from a short-lived thread pool, so they would be killed as
soon as the pool's threads end. ``os.getppid()`` changes only when the parent *process* has died.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time

import sample_factory.algo.runners.runner_parallel as runner_parallel
import sample_factory.algo.sampling.sampler as sampler
from sample_factory.algo.learning.learner_worker import init_learner_process
from sample_factory.algo.sampling.inference_worker import init_inference_process
from sample_factory.algo.sampling.rollout_worker import init_rollout_worker_process

PARENT_POLL_S = 0.5  # how soon a worker notices its parent is gone


def die_with_parent() -> None:
    """End this process (``os._exit(1)``) once the process that started it has died; called first in each SF
    worker. The check runs in a daemon thread every :data:`PARENT_POLL_S` seconds."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if os.getppid() != parent.pid:  # the parent died while this process was starting
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent.pid,), daemon=True, name="parent-watch").start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
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
