"""The process's heap, for long clips (issue 28 item 8): memory freed after a request goes back to the system.

glibc serves a block larger than its mmap threshold (128 KB) with a mapping of its own, unmapped when freed;
but each time such a block is freed it raises the threshold (up to 32 MB), after which large arrays come from
its heap, which it keeps. A 10-minute clip then left about 200 MB behind, and the next one's arrays found a
fragmented heap. Fixing the threshold at glibc's own default (mallopt M_MMAP_THRESHOLD) keeps every large
array in a mapping of its own, given back when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default; fixed, it no longer grows


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold; False where the C library is not glibc (nothing to do there)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # no mallopt: not glibc
        return False
