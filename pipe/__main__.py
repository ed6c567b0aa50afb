"""`python3 -m pipe`: the pipe, exactly as the image's ENTRYPOINT runs it.

Start-up and exit are tuned here, for the process alone: tests run `cli.main` in-process and get
neither."""

import gc
import logging
import os
import sys
import threading


def load_main():
    """`cli.main`, imported with the garbage collector paused. The import (requests, the toolkit,
    …) creates ~20k objects that live as long as the process, and the collector would walk them over
    and over while they are made, freeing nothing: ~7 ms of a ~90 ms start. `freeze` then keeps
    them out of every later collection."""
    gc.disable()
    try:
        from pipe.cli import main
    finally:
        gc.freeze()
        gc.enable()
    return main


def exit_now(code: int) -> None:
    """End the process without the interpreter's teardown, which frees every object of the ~400
    loaded modules one by one: ~20 ms after the ✔ line, in a re-push that takes ~150 ms in all.

    Nothing is lost by skipping it. When `main` returns, temporary directories are removed (they are
    context managers), the output files are closed (`with` blocks) and the upload threads are joined
    (the pool is a context manager too). Left are the buffered lines, flushed here, and the atexit
    hooks: logging's (run here), a thread-pool join with no thread left, certifi's (nothing to do
    for a CA bundle on disk) and colorama's reset (an escape sequence, only to a terminal)."""
    if threading.active_count() > 1:
        sys.exit(code)  # a thread still runs: let the ordinary shutdown wait for it
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


exit_now(load_main()())
