"""A progress line on stderr for work that can take longer than about 2 s (``check`` of a big
network, ``--steps`` of many steps), by tqdm: shown only once the work has taken 2 s, only on a
terminal (never in a pipe, a file or a test's captured output), and gone when the work ends.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

#: Seconds of work before the line appears.
DELAY = 2.0


@contextlib.contextmanager
def progress(what: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A callback ``told(done, total)`` that moves the line ``what: done/total unit``."""
    from tqdm import tqdm  # loads only when a command reports progress

    with tqdm(desc=what, unit=unit, delay=DELAY, leave=False, disable=None, file=sys.stderr, dynamic_ncols=True) as bar:

        def told(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield told
