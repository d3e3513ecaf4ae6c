"""Every notebook in nbs/ is a test case: each runs through nbdev's own runner (`nbdev_test`, which sets
IN_TEST=1 so lessons run small) in a fresh process, so notebooks can't leak state into each other."""
import pytest
from conftest import ROOT, run, tool

NOTEBOOKS = sorted(p for p in (ROOT/'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)

def test_notebooks_found(): assert len(NOTEBOOKS) > 1, f'no notebooks under {ROOT/"nbs"}'

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[str(p.relative_to(ROOT/'nbs')) for p in NOTEBOOKS])
def test_notebook(nb):
    res = run([tool('nbdev_test'), '--path', str(nb)], timeout=900)
    assert res.returncode == 0, f'{nb.name} failed under nbdev_test:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}'
