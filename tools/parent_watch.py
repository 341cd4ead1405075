"""Makes a helper process exit when the process that started it goes away, so that a
crashed test run or demo leaves nothing listening."""

import os
import threading
import time
from collections.abc import Callable


def exit_with_parent(on_exit: Callable[[], None] | None = None, poll_seconds: float = 0.5) -> None:
    """Starts a daemon thread that calls `on_exit` (if any) and exits once the parent is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        if on_exit is not None:
            on_exit()
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
