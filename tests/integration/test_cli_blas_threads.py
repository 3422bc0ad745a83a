"""Process settings of the `mbt` command (backtest/cli/main.py): OpenBLAS pinned to one thread unless the user
chose a number; the cyclic garbage collector's first threshold raised."""

import os
import subprocess
import sys

import pytest

# Asks the OpenBLAS that numpy loaded how many threads it uses, after importing the CLI first as `mbt` does.
PROBE = """
import glob, os, ctypes
import backtest.cli.main
import numpy
libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir, 'numpy.libs', '*openblas*'))
threads = None
for lib in libs:
    for name in ('scipy_openblas_get_num_threads64_', 'scipy_openblas_get_num_threads', 'openblas_get_num_threads64_',
                 'openblas_get_num_threads'):
        fn = getattr(ctypes.CDLL(lib), name, None)
        if fn is not None:
            threads = fn()
            break
print(os.environ['OPENBLAS_NUM_THREADS'], threads)
"""


def _probe(env_threads):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if env_threads is not None:
        env["OPENBLAS_NUM_THREADS"] = env_threads
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    setting, threads = out.stdout.split()
    return setting, None if threads == "None" else int(threads)


def test_one_blas_thread_by_default():
    setting, threads = _probe(None)
    assert setting == "1"
    if threads is None:
        pytest.skip("numpy here does not bundle an OpenBLAS to ask")
    assert threads == 1


def test_a_users_choice_is_kept():
    setting, threads = _probe("2")
    assert setting == "2"
    if threads is not None:
        assert threads == 2


def test_the_collector_runs_at_the_raised_threshold():
    from backtest.cli.main import GC_THRESHOLD

    code = ("import atexit, gc, sys; atexit.register(lambda: print('GC', *gc.get_threshold())); "
            "sys.argv = ['mbt', '--version']; import backtest.cli.main as m; m.main()")
    env = dict(os.environ, MBT_SLOW_EXIT="1")  # an ordinary exit, so the atexit hook runs
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"GC {GC_THRESHOLD} 10 10" in out.stdout
    assert GC_THRESHOLD > 700  # CPython's default
