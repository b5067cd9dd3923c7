"""Imported last by the forkserver of ``hostile_run``, after the backend: freezes the heap.

Without it every forked child's first garbage collection walks, and so copies, the whole
inherited heap (the benchmark's hypothesis included): ~0.3 s of CPU per file.
"""

import gc

import hostile_child  # noqa: F401  (imported, then frozen with the rest)

gc.freeze()
