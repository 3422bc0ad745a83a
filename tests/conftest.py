"""Shared pytest configuration: the hypothesis profiles every property test runs under.

Profiles: ``dev`` (the default on a developer machine), ``ci`` (chosen automatically when ``CI`` is set:
more examples, derandomized so a red build reproduces, failing examples printed as a reproduction blob).
``HYPOTHESIS_PROFILE`` overrides the choice. No profile has a deadline: the first call into the numba
engine compiles (or loads the on-disk cache), which would trip any per-example time limit.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=300, deadline=None, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
