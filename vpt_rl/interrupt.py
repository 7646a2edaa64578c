"""Ctrl-C and ``kill`` (SIGINT / SIGTERM) without tracebacks and without losing work.

Two pieces:

* :func:`stop_requested` -- a context manager for long loops: inside it the first SIGINT or SIGTERM only
  sets a flag that the loop checks after each step (then saves and raises :class:`Interrupted`); a second
  signal stops at once (``KeyboardInterrupt``), for a user who does not want to wait.
* :func:`run_main` -- runs a command's ``main(argv)`` and turns an interrupt into one line on stderr and the
  shell's exit status for the signal (130 for SIGINT, 143 for SIGTERM) instead of a traceback. While it runs,
  SIGTERM raises like Ctrl-C does, so ``finally`` blocks and atomic writes clean up on ``kill`` too.

Example::

    with stop_requested() as stop:
        while step < total:
            train_one_step()
            if stop:
                save()
                raise Interrupted(stop.signum, f"saved step {step}; resume with: ...")
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator, Optional, Sequence

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_status(signum: int) -> int:
    """The exit status a shell reports for a process stopped by ``signum``: ``128 + signum`` (130, 143)."""
    return 128 + int(signum)


class Interrupted(KeyboardInterrupt):
    """A command stopped on a signal after saving what it had; ``str()`` is the one line to show the user.

    A subclass of ``KeyboardInterrupt`` so that code which already lets Ctrl-C through treats it the same.
    ``checkpoint`` is the folder of the checkpoint saved before stopping, if any.
    """

    def __init__(self, signum: int = signal.SIGINT, message: str = "", checkpoint: Optional[str] = None):
        super().__init__(message)
        self.signum = int(signum)
        self.checkpoint = checkpoint
        self.message = message or f"interrupted by {signal.Signals(self.signum).name}"

    def __str__(self) -> str:
        return self.message


class StopFlag:
    """Set by the first SIGINT/SIGTERM inside :func:`stop_requested`; true once a stop was asked for."""

    def __init__(self):
        self.signum: Optional[int] = None

    def __bool__(self) -> bool:
        return self.signum is not None


@contextlib.contextmanager
def stop_requested(notice: str = "saving a checkpoint after this step") -> Iterator[StopFlag]:
    """Catch SIGINT and SIGTERM as a flag instead of an exception inside the block.

    The first signal sets the yielded :class:`StopFlag` and prints ``notice`` (stderr); a second one raises
    :class:`Interrupted` at once. The previous handlers come back on exit. Outside the main thread (where
    Python cannot install handlers) the flag simply never fires.
    """
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag:
            raise Interrupted(signum, f"interrupted again by {signal.Signals(signum).name}: stopped without saving")
        flag.signum = signum
        print(f"\n{signal.Signals(signum).name} received: {notice} (send it again to stop now)", file=sys.stderr,
              flush=True)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            if h is not None:  # None: a handler installed from C, which Python cannot put back
                signal.signal(s, h)
    if flag:  # the signal came after the caller's last check (e.g. during its final save): stop now
        raise Interrupted(flag.signum, f"{signal.Signals(flag.signum).name} received: stopped after finishing "
                                       "the current work")


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def _interrupt_in_chain(error: BaseException) -> Optional[KeyboardInterrupt]:
    """The ``KeyboardInterrupt`` that ``error`` is or was caused by, if any: an interrupt inside a numba or C
    function can surface as ``SystemError: ... returned a result with an exception set`` caused by it."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def run_main(main: Callable[[Sequence[str]], Optional[int]], argv: Sequence[str], prog: str) -> int:
    """``main(argv)`` with interrupts turned into one line on stderr and exit status 130 (SIGINT) / 143 (SIGTERM).

    :param prog: the command's name, the start of the line printed (e.g. ``"vpt-rl train-bc"``).
    :return: ``main``'s return value (``None`` counts as 0), or the signal's exit status.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupted) if in_main_thread else None
    try:
        return int(main(list(argv)) or 0)
    except (KeyboardInterrupt, Exception) as e:
        interrupt = _interrupt_in_chain(e)
        if interrupt is None:
            raise
        signum = getattr(interrupt, "signum", signal.SIGINT)
        message = str(interrupt) if isinstance(interrupt, Interrupted) else "interrupted (SIGINT)"
        print(f"{prog}: {message}", file=sys.stderr, flush=True)
        return exit_status(signum)
    finally:
        if in_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)
