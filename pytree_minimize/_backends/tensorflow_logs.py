"""Loading a framework without the INFO lines its C++ libraries log while they load.

TensorFlow (2.19 and later) logs at load time through absl before absl's logging is set up, so the
lines go straight to file descriptor 2 whatever `TF_CPP_MIN_LOG_LEVEL` says ("oneDNN custom
operations are on", "This TensorFlow binary is optimized to use available CPU instructions", each
after "WARNING: All log messages before absl::InitializeLog() is called..."), and Jupyter saves them
as cell output. This module alone redirects the process's stderr: during the import only, into a
temporary file, and then writes back every line that is not such an INFO line, so warnings and
errors still reach the user.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

#: absl's INFO lines (`I0000 00:00:...`), TensorFlow's older INFO format
#: (`2025-01-01 12:00:00.000000: I ...`), absl's notice that precedes the first line it logs, and
#: the second line of TensorFlow's CPU-instructions notice.
_LOAD_TIME_INFO = re.compile(
    rb"I\d{4} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: I |"
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called|"
    rb"To enable the following instructions: "
)


@contextlib.contextmanager
def without_load_time_info() -> Iterator[None]:
    """Within the block, drop the INFO lines written to file descriptor 2; keep the rest."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                caught.seek(0)
                kept = b"".join(line for line in caught if not _LOAD_TIME_INFO.match(line))
                if kept:
                    os.write(2, kept)
    finally:
        os.close(saved)
