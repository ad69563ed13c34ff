"""Root pytest configuration shared by every package's tests.

Triton reads ``TRITON_INTERPRET`` once, when it is first imported, so it is set here, before
any test module imports torch or triton: on this CPU-only CI the Triton kernels run in the
interpreter (exact fp32, slow), which proves correctness, not speed.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
# Lightning/torch: keep CPU thread use predictable on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")

collect_ignore_glob = ["benchmarks/*", "runs/*", ".venv/*"]
