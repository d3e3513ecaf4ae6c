"""Importing bborzan is cheap and safe: no download, no GPU, no fastbook (whose import seeds RNGs and changes
cuDNN settings)."""
import sys, pkgutil
from conftest import ROOT, run
import bborzan

MODULES = sorted(m.name for m in pkgutil.iter_modules(bborzan.__path__, 'bborzan.'))

CHECK = r'''
import socket, sys, importlib
def no_network(*a, **k): raise OSError('bborzan tried to use the network while being imported')
socket.socket.connect = no_network
socket.create_connection = no_network
for m in sys.argv[1:]: importlib.import_module(m)
import torch
assert 'fastbook' not in sys.modules, 'importing bborzan imported fastbook'
assert not torch.cuda.is_initialized(), 'importing bborzan initialised CUDA'
print('ok', len(sys.argv) - 1)
'''

def test_modules_found(): assert 'bborzan.core' in MODULES

def test_import_is_safe():
    res = run([sys.executable, '-c', CHECK, *MODULES])
    assert res.returncode == 0 and res.stdout.startswith('ok'), res.stderr[-4000:]
