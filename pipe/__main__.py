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
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away: nothing left to tell it
            pass
    os._exit(code)


def run() -> int:
    """`main`, with output to a reader that went away (`| head`) ending the run quietly: there is
    nobody left to read a traceback, and logging must not print one per line either."""
    logging.raiseExceptions = False
    try:
        return load_main()()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


exit_now(run())
