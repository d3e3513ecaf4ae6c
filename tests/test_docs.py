"""nbdev's docs workflow without Quarto (which can't be installed offline): every notebook goes through the same
processors `nbdev_docs`, `nbdev_preview` and `nbdev_readme` run before Quarto renders (`FilterDefaults`, in a fresh
process with IN_TEST=1, as `nbdev.serve_drv` does). A cell that mixes imports with other code, or fails when the docs
processor runs it, fails here; so does a summary that the site would cut, a lost Colab badge or a notebook missing
from the sidebar."""
import json, re, sys
import pytest
import yaml
from conftest import ROOT, run

NOTEBOOKS = sorted(p for p in (ROOT/'nbs').glob('*.ipynb'))
LESSONS = [p for p in NOTEBOOKS if '_lesson_' in p.name]

PROCESS = r'''
import json, os, sys, warnings
os.environ['IN_TEST'] = '1'
from pathlib import Path
from execnb.nbio import read_nb
from nbdev.processors import FilterDefaults
p = Path(sys.argv[1])
nb = read_nb(p); nb.path_ = str(p)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    FilterDefaults()(nb)
mixed = [str(w.message) for w in caught if 'imports and other code' in str(w.message)]
cells = [c.source for c in nb.cells if c.source]
print(json.dumps(dict(frontmatter=nb.frontmatter_, mixed=mixed, cells=cells)))
'''

def _process(nb):
    res = run([sys.executable, '-c', PROCESS, str(nb)], timeout=300)
    assert res.returncode == 0, f"nbdev's docs processors fail on {nb.name}:\n{res.stderr[-4000:]}"
    return json.loads(res.stdout.strip().splitlines()[-1])

def _summary_lines(nb):
    first = json.loads(nb.read_text(encoding='utf-8'))['cells'][0]
    return [l for l in ''.join(first['source']).splitlines() if l.startswith('>')]

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_docs_processors(nb):
    out = _process(nb)
    assert not out['mixed'], f"{nb.name}: cells mix imports with other code (nbdev runs them when building docs):\n" + '\n---\n'.join(out['mixed'])
    fm = out['frontmatter']
    assert fm.get('title'), f"{nb.name}: no '# title' in the first markdown cell"
    summary = _summary_lines(nb)
    assert len(summary) == 1, f"{nb.name}: the '>' summary spans {len(summary)} lines; the site keeps only the first"
    assert fm.get('description') == summary[0][1:].strip()
    if nb in LESSONS:
        assert any('colab-badge.svg' in c for c in out['cells']), f"{nb.name}: the Colab badge is lost when nbdev builds the page"

def test_sidebar_lists_every_notebook():
    side = yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text())['website']['sidebar']['contents']
    listed = []
    def walk(items):
        for it in items:
            if isinstance(it, str): listed.append(it)
            else: walk(it['contents'])
    walk(side)
    assert sorted(listed) == sorted(p.name for p in NOTEBOOKS)
    assert (ROOT/'nbs'/'_quarto.yml').exists() and 'sidebar.yml' in (ROOT/'nbs'/'_quarto.yml').read_text()

def test_index_links_work_on_the_site_and_on_github():
    "The index links notebooks relative to nbs/ (the site); README.md has them relative to the repo root (GitHub)."
    index = (ROOT/'nbs'/'index.ipynb').read_text(encoding='utf-8')
    readme = (ROOT/'README.md').read_text(encoding='utf-8')
    assert '](nbs/' not in index
    links = re.findall(r'\]\(([^)]+\.ipynb)\)', readme)
    assert links and all((ROOT/l).exists() for l in links), [l for l in links if not (ROOT/l).exists()]

def test_install_cell_fires_wherever_bborzan_is_missing():
    for nb in LESSONS:
        cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
        inst = [''.join(c['source']) for c in cells[:4] if 'pip install' in ''.join(c['source'])]
        assert inst and 'except ImportError' in inst[0] and '/content' not in inst[0], nb.name

def test_readme_links_to_repo_files_exist():
    "Links to the repo's own files on GitHub (CONTRIBUTING.md, CHANGELOG.md: they work on the site too) name files that exist."
    readme = (ROOT/'README.md').read_text(encoding='utf-8')
    links = re.findall(r'\]\(https://github\.com/bborzan/bborzan/blob/main/([^)#]+)\)', readme)
    assert links and all((ROOT/l).is_file() for l in links), [l for l in links if not (ROOT/l).is_file()]

def test_pull_request_workflow_runs_the_readme_commands():
    "The GitHub workflow installs and tests with the README's dev command, at small size, like .ci/run."
    readme = (ROOT/'README.md').read_text(encoding='utf-8')
    dev = re.search(r'^pip install -e "\.\[dev\]" && (.+)$', readme, re.M)
    assert dev, "README.md has no 'pip install -e \".[dev]\" && ...' line"
    wf = yaml.safe_load((ROOT/'.github'/'workflows'/'test.yaml').read_text())
    job = wf['jobs']['test']
    runs = '\n'.join(s.get('run', '') for s in job['steps'])
    assert 'pip install -e ".[dev]"' in runs and dev.group(1) in runs, runs
    assert str(job.get('env', {}).get('BBORZAN_FAST')) == '1'
    assert all('@' in s['uses'] and not s['uses'].endswith(('@main', '@master')) for s in job['steps'] if 'uses' in s)
    assert all(cmd in runs for cmd in ('nbdev_export', 'nbdev_clean', 'tools/readme.py'))
