"""Lower the OS scheduling priority of the calling thread (Linux: niceness is per thread).

The UDP receiver process must be scheduled promptly: if it waits for a CPU longer than the
kernel's socket buffer lasts, datagrams are lost before anyone saw them. Writing and indexing
can wait, because what they have not done yet sits in bounded, counted queues. So when the
machine is busy the collector's background threads give way to the receiver. Raising a
priority back needs privileges, so this is done only by threads that stay background.
"""

from __future__ import annotations

import os
import sys
import threading

BACKGROUND_NICENESS = 5


def make_current_thread_background(increment: int = BACKGROUND_NICENESS) -> bool:
    """Returns whether it worked (only on Linux, where ``setpriority`` accepts a thread id)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))
    except OSError:
        return False
    return True
