"""The library, the notebooks and the README agree: running `nbdev_export`, `nbdev_clean` or `tools/readme.py`
on a copy of the repo must not change any file."""
import os, shutil, filecmp
from pathlib import Path
import pytest
from conftest import ROOT, run, tool
import sys

def _files(d:Path):
    return {p.relative_to(d) for p in d.rglob('*') if p.is_file() and '__pycache__' not in p.parts and '.ipynb_checkpoints' not in p.parts}

@pytest.fixture(scope='module')
def regenerated(tmp_path_factory):
    "A copy of the repo's sources after nbdev_export and nbdev_clean have run in it."
    tmp = tmp_path_factory.mktemp('repo')
    for name in ('settings.ini', 'setup.py', 'README.md'): shutil.copy(ROOT/name, tmp/name)
    ignore = shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints', '.quarto', '_proc')
    for name in ('nbs', 'bborzan'): shutil.copytree(ROOT/name, tmp/name, ignore=ignore)
    for cmd in ('nbdev_export', 'nbdev_clean'):
        res = run([tool(cmd)], cwd=tmp)
        assert res.returncode == 0, f'{cmd} failed:\n{res.stdout}\n{res.stderr}'
    return tmp

@pytest.mark.parametrize('folder', ['bborzan', 'nbs'])
def test_unchanged_by_nbdev(regenerated, folder):
    before, after = ROOT/folder, regenerated/folder
    added = sorted(map(str, _files(after) - _files(before)))
    changed = sorted(str(f) for f in _files(before) & _files(after) if not filecmp.cmp(before/f, after/f, shallow=False))
    hint = 'run `nbdev_export` and `nbdev_clean` and commit the result' if folder=='nbs' or changed else ''
    assert not added and not changed, f'{folder}/ out of date: changed {changed}, added {added}; {hint or "run nbdev_export"}'

def test_readme_in_sync():
    res = run([sys.executable, str(ROOT/'tools'/'readme.py'), '--check'])
    assert res.returncode == 0, res.stderr

def test_index_tables_current(monkeypatch):
    "The notebook and results tables in nbs/index.ipynb (and so README.md) match the notebooks and nbs/results/*.json now."
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    nb = read_nb(ROOT/'nbs'/'index.ipynb')
    monkeypatch.chdir(ROOT/'nbs')
    shell, stale = CaptureShell(), []
    for cell in nb.cells:
        if cell.cell_type != 'code': continue
        stored = [o['data']['text/markdown'] for o in cell.get('outputs', []) if 'text/markdown' in o.get('data', {})]
        outs = shell.run(cell.source)
        fresh = [o['data']['text/markdown'] for o in outs if 'text/markdown' in o.get('data', {})]
        norm = lambda xs: [''.join(x) if isinstance(x, list) else x for x in xs]
        if norm(stored) != norm(fresh): stale.append(cell.source.splitlines()[-1])
    assert not stale, (f"nbs/index.ipynb's outputs are out of date ({stale}): run `cd nbs && jupyter nbconvert --to notebook "
                       "--execute --inplace index.ipynb && nbdev_clean --fname index.ipynb && cd .. && python tools/readme.py`")

NBDEV_README = r'''
import sys, nbdev.quarto as q
calls = []
q._sprun = lambda cmd: calls.append(cmd)                      # Quarto: what nbdev_readme would render
q.proc_nbs = lambda *a, **k: calls.append('proc_nbs') or q.Path('.')
q.nbdev_readme.__wrapped__(chk_time=True)                      # as nbdev_prepare and nbdev_docs call them
q.nbdev_contributing.__wrapped__(chk_time=True)
q.refresh_quarto_yml()                                          # nbdev_prepare and nbdev_docs rewrite nbs/nbdev.yml
print(calls)
'''

def test_nbdev_prepare_and_docs_leave_readme_to_tools(tmp_path):
    "nbdev_prepare and nbdev_docs render README.md with Quarto from `readme_nb` when README.md is older; settings.ini names none."
    (tmp_path/'nbs').mkdir()
    for name in ('settings.ini', 'README.md'): shutil.copy(ROOT/name, tmp_path/name)
    for name in ('index.ipynb', '_quarto.yml', 'nbdev.yml', 'sidebar.yml'): shutil.copy(ROOT/'nbs'/name, tmp_path/'nbs'/name)
    os.utime(tmp_path/'README.md', (0, 0))            # older than every notebook, as after a fresh clone can be
    res = run([sys.executable, '-c', NBDEV_README], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == '[]', (
        f"nbdev would render README.md itself ({res.stdout.strip().splitlines()[-1]}), overwriting tools/readme.py's: "
        "settings.ini's readme_nb must name no notebook")
    for name in ('_quarto.yml', 'nbdev.yml'):
        assert filecmp.cmp(tmp_path/'nbs'/name, ROOT/'nbs'/name, shallow=False), f'nbdev rewrites nbs/{name}: update it from settings.ini'
