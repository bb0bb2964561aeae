"""The embeddings module: nothing happens when it is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_import_loads_no_library_and_reads_no_cpu_flags():
    """Importing search.embeddings neither opens libc nor reads /proc/cpuinfo: both wait for first use."""
    probe = ("import search.embeddings as e; "
             "print(e._malloc_trim.cache_info().currsize, e._cpu_has_bf16.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parent.parent, check=True,
                         capture_output=True, text=True).stdout
    assert out.split() == ["0", "0"]

