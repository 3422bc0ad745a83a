"""Locate the shared real-data folder for tests, and skip cleanly when it is absent.

Real historical data lives beside the project in ``../shared/data`` (DESIGN §8) and is never copied into the
tree. Tests ask for a file or folder through :func:`require`, which returns its path or skips the test with
a message naming where it looked. ``MBT_SHARED_DATA`` points elsewhere (e.g. a CI cache).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV_VAR = "MBT_SHARED_DATA"


def _project_root() -> Path:
    here = Path(__file__).resolve().parent
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    raise RuntimeError(f"no pyproject.toml above {here}")


def shared_data_dir() -> Path:
    """Folder holding the shared real data.

    Returns
    -------
    Path
        ``$MBT_SHARED_DATA`` if set and non-empty, else ``<project root>/../shared/data`` (the project root
        is the nearest folder above this file containing ``pyproject.toml``). The folder may not exist.
    """
    override = os.environ.get(ENV_VAR, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    return (_project_root().parent / "shared" / "data").resolve()


def require(relative_path: str | Path) -> Path:
    """Path of a shared-data file or folder, or skip the calling test when it is missing.

    Parameters
    ----------
    relative_path : str or Path
        Path relative to :func:`shared_data_dir`, e.g. ``"aave_v2_user_snapshots_bhemen"``.

    Returns
    -------
    Path
        The existing absolute path.
    """
    path = shared_data_dir() / relative_path
    if not path.exists():
        pytest.skip(f"real data not available: {path} (set {ENV_VAR} to the shared data folder)")
    return path
