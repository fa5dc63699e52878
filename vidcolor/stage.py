"""Pipeline stages in their own threads, joined by bounded queues, with errors handed back to the caller:
`StageThread` consumes items (smoothing, encoding), `SourceThread` produces them (decoding).

Torch, OpenCV and the codecs release the GIL, so work moved to a stage thread runs on another
core next to the model. The bounded queue keeps memory flat: the producer waits when the
stage falls behind.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()
BACKGROUND_NICE = 5
"""How much lower than the model's thread the other stages run (Linux nice steps)."""


def yield_to_model(increment: int = BACKGROUND_NICE) -> None:
    """Lower the calling thread's CPU priority (Linux: nice is per thread), and so that of the
    codec and OpenCV threads it starts, which inherit it.

    The model's thread is the critical path; on a machine with few cores the scheduler would
    otherwise share its core with decoding, encoding and smoothing, which have slack. They
    still get every cycle the model does not use. Only for CPU models: on a GPU, decoding and
    encoding are the critical path. Elsewhere than Linux, or if refused, nothing changes.
    """
    if sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except OSError:
        pass


class StageThread(Generic[T]):
    """Runs `work(item)` for each item `put()`, in order, in a thread named `name`.

    `put()` and `finish()` re-raise an exception the thread met, in the caller's thread;
    `abort()` stops it without draining. `busy_seconds` is the time spent in `work`.
    `setup` is a context manager factory entered in the thread (thread-local torch modes).
    `background`: the thread yields the CPU to the model's thread (`yield_to_model`).
    """

    def __init__(self, work: Callable[[T], None], name: str, queue_items: int = 2,
                 setup: Callable[[], object] | None = None, background: bool = False):
        self._background = background
        self._work = work
        self._setup = setup
        self._queue: queue.Queue = queue.Queue(queue_items)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.busy_seconds = 0.0

    def start(self) -> StageThread[T]:
        self._thread.start()
        return self

    def put(self, item: T) -> None:
        self._put(item)

    def finish(self) -> None:
        """Process everything queued, then stop; raises the thread's error, if any."""
        self._put(_DONE)
        self._thread.join()
        self._raise_error()

    def abort(self) -> None:
        """Stop after the current item; queued items are dropped."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _put(self, item: object) -> None:
        while True:
            self._raise_error()
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._raise_error()
                    raise RuntimeError(f"the {self._thread.name} thread is not running") from None

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            if self._background:
                yield_to_model()
            if self._setup is None:
                self._loop()
            else:
                with self._setup():
                    self._loop()
        except BaseException as exc:  # re-raised in the caller's thread by _raise_error
            self._error = exc
        finally:  # as threading.Thread does: a bound-method `work` would otherwise keep its owner (and,
            # for the writer, a whole encoder per segment) alive in a reference cycle
            self._work = self._setup = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            start = time.perf_counter()
            self._work(item)
            self.busy_seconds += time.perf_counter() - start


class SourceThread(Generic[T]):
    """Runs the iterable `produce()` in a thread named `name`; iterate over the SourceThread to get its items.

    An exception raised in the thread is re-raised in the iterating thread, after the items made before it.
    `close()` stops the thread, also mid-stream: the producer's generator is closed, so its `finally` runs.
    `background`: the thread yields the CPU to the model's thread (`yield_to_model`), set before `produce`
    starts, so that the codec threads it opens inherit it.
    """

    def __init__(self, produce: Callable[[], Iterable[T]], name: str, queue_items: int = 2,
                 background: bool = False):
        self._produce = produce
        self._background = background
        self._queue: queue.Queue = queue.Queue(queue_items)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> SourceThread[T]:
        self._thread.start()
        return self

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError(f"the {self._thread.name} thread is not running") from None
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        items = None
        try:
            if self._background:
                yield_to_model()
            items = iter(self._produce())
            for item in items:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # re-raised in the consumer's thread by __iter__
            self._put(_Failure(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            self._produce = None


class _Failure:
    """An exception in transit from a SourceThread to its consumer (an exception could also be a legal item)."""

    def __init__(self, error: BaseException):
        self.error = error
