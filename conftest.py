"""Root pytest configuration shared by every package's tests.

Triton reads ``TRITON_INTERPRET`` once, when it is first imported, so it is set here, before
any test module imports torch or triton: on this CPU-only CI the Triton kernels run in the
interpreter (exact fp32, slow), which proves correctness, not speed.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
# Lightning/torch: keep CPU thread use predictable on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")

import importlib.util

collect_ignore_glob = ["benchmarks/*", "runs/*", ".venv/*"]
if importlib.util.find_spec("triton") is None:  # the optional [triton] extra is not installed
    collect_ignore_glob.append("packages/core/src/moesuite/core/kernels/triton/*")
