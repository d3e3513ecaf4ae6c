"""Checks on what the notebooks commit, read straight from the .ipynb JSON (nothing is executed):
no output carries an absolute path of the machine that ran it, and every lesson that writes results names the
file after itself (`NN_lesson_NAME.ipynb` -> `write_results('NAME', ...)` -> `nbs/results/NAME.json`)."""
import ast, json, re
import pytest
from conftest import ROOT

NBS = ROOT/'nbs'
NOTEBOOKS = sorted(p for p in NBS.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
LESSONS = sorted(NBS.glob('*_lesson_*.ipynb'))
RESULTS = sorted((NBS/'results').glob('*.json'))

# Absolute paths of a home, a virtual environment or a temporary folder, on Linux, macOS and Windows.
LOCAL_PATH = re.compile(r"(/root/|/home/|/tmp/|/work/|/Users/|/var/folders/|site-packages|dist-packages|"
                        r"[A-Za-z]:\\\\?Users\\\\?|\\AppData\\|/\.venv/|/venv/|/\.virtualenvs/|/opt/conda/)")
TEXT_MIMES = ('text/plain', 'text/markdown', 'text/html', 'text/latex')

def _text(x): return ''.join(x) if isinstance(x, list) else str(x)

def output_texts(nb_path):
    "Every (cell index, kind, text) of the committed outputs of `nb_path`: streams, text data and tracebacks."
    nb = json.loads(nb_path.read_text(encoding='utf-8'))
    for i, cell in enumerate(nb['cells']):
        for out in cell.get('outputs', []):
            if 'text' in out: yield i, out.get('name', 'stream'), _text(out['text'])
            for mime in TEXT_MIMES:
                if mime in out.get('data', {}): yield i, mime, _text(out['data'][mime])
            if out.get('output_type') == 'error':
                yield i, 'error', '\n'.join([out.get('ename', ''), out.get('evalue', '')] + list(out.get('traceback', [])))

def local_paths(nb_path):
    "Where `nb_path`'s outputs show a local absolute path: a list of (cell, kind, the line)."
    return [(i, kind, line.strip()[:200]) for i, kind, text in output_texts(nb_path)
            for line in text.splitlines() if LOCAL_PATH.search(line)]

def lesson_name(nb_path):
    "'borzan' for nbs/10_lesson_borzan.ipynb."
    m = re.fullmatch(r'\d+[a-z]?_lesson_(.+)', nb_path.stem)
    assert m, f'{nb_path.name} is not named NN_lesson_NAME.ipynb'
    return m.group(1)

def write_results_names(nb_path):
    "The first argument of every `write_results(...)` call in `nb_path`'s code: a str, or None when it isn't a literal."
    nb = json.loads(nb_path.read_text(encoding='utf-8'))
    names = []
    for cell in nb['cells']:
        if cell['cell_type'] != 'code': continue
        src = re.sub(r'^(\s*)[!%].*$', r'\1pass', _text(cell['source']), flags=re.M)   # a shell or magic line: a no-op here
        for node in ast.walk(ast.parse(src)):
            if not isinstance(node, ast.Call): continue
            f = node.func
            if (f.id if isinstance(f, ast.Name) else getattr(f, 'attr', None)) != 'write_results': continue
            arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == 'name'), None)
            names.append(arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None)
    return names

def test_found():
    assert NOTEBOOKS and LESSONS, f'no notebooks or no lessons under {NBS}'

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_local_paths_in_outputs(nb):
    bad = local_paths(nb)
    assert not bad, (f'{nb.name}: outputs show a local absolute path (silence or re-word what prints it, then re-run '
                     'the cell; never edit an output by hand):\n' + '\n'.join(f'  cell {i} ({k}): {l}' for i, k, l in bad))

@pytest.mark.parametrize('nb', LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_results_named_after_lesson(nb):
    names, want = write_results_names(nb), lesson_name(nb)
    wrong = [n for n in names if n != want]
    assert not wrong, f"{nb.name} calls write_results with {wrong}: a lesson's results file is named after it, write_results({want!r}, ...)"

def test_results_files_belong_to_lessons():
    lessons = {lesson_name(p) for p in LESSONS}
    writers = {lesson_name(p) for p in LESSONS if write_results_names(p)}
    for p in RESULTS:
        assert p.stem in lessons, f'{p.relative_to(ROOT)} matches no lesson (nbs/NN_lesson_{p.stem}.ipynb): lessons are {sorted(lessons)}'
        assert p.stem in writers, f'{p.relative_to(ROOT)}: lesson {p.stem} never calls write_results({p.stem!r}, ...)'
        rec = json.loads(p.read_text(encoding='utf-8'))
        assert rec.get('name') == p.stem, f"{p.relative_to(ROOT)} says name={rec.get('name')!r}"
