"""The cyclic garbage collector paused while this package builds what lives as long as it.

An import makes thousands of objects (modules, functions, classes) that live as long as the
process, and so does building the private session and its clients (botocore's handler
tables, service models, a client class): no garbage, and every young-generation collection
they trigger looks at them and frees nothing. Paused, that work costs one such collection
instead of several, and a short-lived process is not pushed over the threshold of a full
collection that botocore's own profile stays under (a full collection walks every object in
memory: ``benchmarks/short_lived_cost.py`` counts 12-20 M instructions for it, and more
time than that, since it is bound by memory). Only work without network calls is paused.

Left alone if the application has paused the collector itself. The pause is process-wide and
only the pausing thread resumes it, so a child another thread forks meanwhile gets the
collector back at once.
"""

from __future__ import annotations

import gc
import os
import threading

_lock = threading.Lock()
_pauses = 0  # nested or concurrent pauses of this module that are under way
_fork_handler_registered = False


class collector_paused:  # lower case: used as a `with` statement, as contextlib's are
    def __enter__(self) -> None:
        global _pauses
        with _lock:
            self._counted = _pauses > 0 or gc.isenabled()
            if not self._counted:
                return  # the application's own pause: not ours to end
            _register_fork_handler()
            _pauses += 1
            gc.disable()

    def __exit__(self, *exc_info: object) -> None:
        global _pauses
        if not self._counted:
            return
        with _lock:
            _pauses -= 1
            if _pauses == 0:
                gc.enable()


def _register_fork_handler() -> None:
    global _fork_handler_registered
    if not _fork_handler_registered:
        _fork_handler_registered = True
        os.register_at_fork(after_in_child=_resume_in_child)


def _resume_in_child() -> None:
    global _lock, _pauses
    _lock = threading.Lock()  # a pausing thread of the parent may have held it
    if _pauses:
        _pauses = 0
        gc.enable()
