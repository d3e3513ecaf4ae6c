"Shared helpers for the test suite: where the repo is, and how to run a command from the installed environment."
import os, sys, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def tool(name):
    "Path of a console script installed beside this Python (nbdev_test, bborzan, ...)."
    p = BIN/name
    return str(p) if p.exists() else name

def worker_env(**extra):
    "Environment for a child process: torch threads split evenly between the pytest-xdist workers."
    env = dict(os.environ)
    n_workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    env.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1)//n_workers)))
    env.update(extra)
    return env

def run(cmd, cwd=ROOT, timeout=600, **env):
    "Run `cmd` (a list) and return the CompletedProcess, text output captured."
    return subprocess.run(cmd, cwd=cwd, env=worker_env(**env), capture_output=True, text=True, timeout=timeout)
