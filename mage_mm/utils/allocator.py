"""glibc malloc tunables that keep large tensor buffers on the heap (opt-in; never applied on ``import mage_mm``).

glibc serves every allocation above its mmap threshold (128 KiB at start, adapted up to 32 MiB) with a
fresh ``mmap`` and returns it to the kernel on ``free``, so a network that allocates the same large
activations every call pays the page faults of touching new memory every call (measured: millions of
minor faults per VQGAN encode at 256², README "Performance"). :func:`tune_glibc_malloc` raises the mmap
threshold and the trim threshold with ``mallopt`` so freed blocks are reused. It does not set
``M_TOP_PAD`` (a 256 MB pad measured +370 MB of peak RSS).

Whether a tool calls it is decided by measurement (README "Performance"); ``MAGE_MM_MALLOC=0`` in the
environment turns the call into a no-op, ``MAGE_MM_MALLOC=1`` forces it.
"""
import ctypes
import ctypes.util
import os
from typing import Optional

# mallopt parameter numbers from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# blocks up to 1 GiB come from the heap and are reused after free (glibc's dynamic threshold stops at 32 MiB;
# glibc 2.36 accepts this explicit value: mallopt returns 1, measured)
DEFAULT_MMAP_THRESHOLD = 1 << 30
DEFAULT_TRIM_THRESHOLD = 1 << 30  # an int for mallopt
ENV = 'MAGE_MM_MALLOC'


def _libc() -> Optional[ctypes.CDLL]:
    name = ctypes.util.find_library('c')
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, 'mallopt') else None


def tune_glibc_malloc(mmap_threshold: int = DEFAULT_MMAP_THRESHOLD, trim_threshold: int = DEFAULT_TRIM_THRESHOLD,
                      default: bool = True) -> bool:
    """Set glibc's ``M_MMAP_THRESHOLD`` / ``M_TRIM_THRESHOLD`` for this process; returns whether it did.

    Args:
        mmap_threshold (int): Allocations larger than this still get their own mmap. Defaults to 1 GiB.
        trim_threshold (int): Free memory at the heap top kept before trimming. Defaults to 1 GiB.
        default (bool): Whether to tune when ``MAGE_MM_MALLOC`` is unset. Defaults to True.

    Returns:
        bool: False where the C library has no ``mallopt`` (musl, macOS) or ``MAGE_MM_MALLOC=0``.
    """
    env = os.environ.get(ENV, '')
    if env == '0' or (env == '' and not default):
        return False
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(mmap_threshold)) == 1
    ok = libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(trim_threshold)) == 1 and ok
    return ok


#: ``MAGE_MM_TRIM=0`` in the environment turns :func:`release_free_heap` into a no-op (speed over peak RSS)
TRIM_ENV = 'MAGE_MM_TRIM'


def release_free_heap() -> bool:
    """Give the free pages of glibc's heap back to the kernel (``malloc_trim(0)``); returns whether it did.

    Freed tensors below the mmap threshold stay in the process's heap, counted in its RSS, while a later
    allocation above the threshold gets a fresh mmap on top of them. Called before such a large transient
    (the VQGAN's 256² activations when tokenising or decoding on CPU) it keeps the peak at live memory plus
    the transient. No effect on any value; the cost is the page faults of reusing the returned pages
    (README "Performance", memory). ``MAGE_MM_TRIM=0`` disables it.
    """
    if os.environ.get(TRIM_ENV, '') == '0':
        return False
    libc = _libc()
    if libc is None or not hasattr(libc, 'malloc_trim'):
        return False
    libc.malloc_trim(ctypes.c_size_t(0))
    return True


# the tools' default, decided by measurement (README "Performance", allocators, 23:00 UTC run): faster (encode
# -32 %, train step -5 %, generation -3 to -6 %) but +270 to +363 MB of peak RSS, so off: MAGE_MM_MALLOC=1 opts in
TOOLS_DEFAULT = False


def tune_malloc_for_tools() -> bool:
    """The call at the top of every tool's ``main`` (``tools/train.py``, ``test.py``, ``generate.py``, ``edit.py``).

    Applies :func:`tune_glibc_malloc` with the measured tools' default (``TOOLS_DEFAULT``); ``MAGE_MM_MALLOC=0``
    / ``=1`` in the environment overrides it. Returns whether the tunables were set.
    """
    return tune_glibc_malloc(default=TOOLS_DEFAULT)


__all__ = ['tune_glibc_malloc', 'tune_malloc_for_tools', 'release_free_heap', 'TOOLS_DEFAULT', 'M_MMAP_THRESHOLD',
           'M_TRIM_THRESHOLD', 'ENV', 'TRIM_ENV']
