import threading
import time

import pytest

from vidcolor.stage import SourceThread, StageThread


def test_items_processed_in_order_in_another_thread():
    seen, threads = [], set()

    def work(item):
        seen.append(item)
        threads.add(threading.current_thread().name)

    stage = StageThread(work, name="t-order").start()
    for i in range(20):
        stage.put(i)
    stage.finish()
    assert seen == list(range(20)) and threads == {"t-order"}


def test_error_in_the_thread_is_raised_to_the_caller():
    def work(item):
        if item == 3:
            raise ValueError("bad item 3")

    stage = StageThread(work, name="t-error").start()
    with pytest.raises(ValueError, match="bad item 3"):
        for i in range(100):  # a later put() or finish() re-raises it
            stage.put(i)
        stage.finish()


def test_abort_stops_without_draining():
    done = []

    def work(item):
        time.sleep(0.05)
        done.append(item)

    stage = StageThread(work, name="t-abort", queue_items=50).start()
    for i in range(50):
        stage.put(i)
    stage.abort()
    assert len(done) < 50


def test_setup_context_is_entered_in_the_thread():
    import torch

    modes = []
    stage = StageThread(lambda _: modes.append(torch.is_inference_mode_enabled()), name="t-setup",
                        setup=torch.inference_mode).start()
    stage.put(None)
    stage.finish()
    assert modes == [True] and not torch.is_inference_mode_enabled()


@pytest.mark.skipif(not hasattr(__import__("os"), "getpriority") or __import__("sys").platform != "linux",
                    reason="per-thread nice is Linux's")
def test_stage_threads_yield_the_cpu_to_the_model_thread():
    import os

    nice = []
    stage = StageThread(lambda _: nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())),
                        name="t-nice", background=True).start()
    stage.put(None)
    stage.finish()
    assert nice[0] > os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) or nice[0] == 19


def test_a_finished_stage_does_not_keep_its_owner_alive():
    """The writer owns a stage running its own method; a cycle would keep every segment's encoder
    in memory until a full garbage collection (memory grew with video length)."""
    import gc
    import weakref

    class Owner:
        def __init__(self):
            self.stage = StageThread(self.work, name="t-owner").start()

        def work(self, item):
            pass

    gc.disable()
    try:
        owner = Owner()
        owner.stage.put(1)
        owner.stage.finish()
        ref = weakref.ref(owner)
        del owner
        assert ref() is None
    finally:
        gc.enable()


def test_source_thread_hands_over_items_in_order_then_its_error():

    def produce():
        yield from range(5)
        raise ValueError("bad packet")

    source = SourceThread(produce, "test-source", queue_items=1).start()
    got = []
    with pytest.raises(ValueError, match="bad packet"):
        for item in source:
            got.append(item)
    source.close()
    assert got == [0, 1, 2, 3, 4]


def test_source_thread_close_mid_stream_stops_the_producer():
    """A consumer that stops early (Ctrl-C, an error downstream) must not leave the producer running."""
    closed = threading.Event()
    made = []

    def produce():
        try:
            for i in range(10**9):
                made.append(i)
                yield i
        finally:
            closed.set()

    source = SourceThread(produce, "test-source", queue_items=2).start()
    for item in source:
        if item == 3:
            break
    source.close()
    assert closed.is_set()
    assert len(made) <= 3 + 1 + 2 + 1  # the ones taken, the queue's two and the one waiting to be put
    assert not any(t.name == "test-source" for t in threading.enumerate())
