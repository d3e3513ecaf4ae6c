"""Every number typed into a lesson's markdown is one that an output of the same notebook prints.

A lesson's sentences must be backed by its own outputs: a measured number typed by hand goes stale the day the
lesson is run again. This test reads the committed .ipynb JSON (nothing is executed) and, for every lesson, collects
the numbers in its markdown cells and the numbers in its outputs (streams, text/plain, text/markdown, text/html).

What counts as a typed number (the rest are left alone, by these rules):
- a number with a decimal point (0.47, 1.5), a percentage (46%), a number in scientific notation (5.1e-05), or an
  integer of 1,000 or more (9,998; 1590). Integers under 1,000 are settings and counts of the protocol (64 units,
  15 epochs, windows of 16) that the code cells state, and are not checked; nor are years (1900-2099 written
  without a thousands separator) or numbers that are part of a word or a name (`LMModel7`, Q17, 2-layer).
- Text in code spans (`sl=16`), link targets, URLs and HTML tags is code or an address, not prose.

A typed number is backed when some output number shows the same value at the precision typed: the output rounds
to it (0.3726 backs "0.37" and "about 0.37"), thousands separators are ignored (1590 backs "1,590"), a fraction
backs its percentage and a percentage its fraction (0.0148 backs "1.48%", 46% backs "0.46"), and signs are ignored.
A number written in the notebook's own code cells backs it as well: it is a setting the reader sees in the code
(`trn = ids[:6083 * 8]` backs "before 6,083", `split=0.8` backs "80%"), not a measurement.

A quoted reference number is exempt when the sentence it stands in names its public source: the sentence contains one
of `SOURCES` (for example "fastbook printed 0.47", "the book's transcript 001 printed 0.885", "Merity et al. 2017
report 57.3"), or another lesson of this course by its number ("lesson 14 measured a spread of 0.03 across seeds":
that lesson prints it). A number that is neither backed nor quoted fails the test,
with its cell and sentence.
"""
import json, re
import pytest
from conftest import ROOT

LESSONS = sorted((ROOT/'nbs').glob('*_lesson_*.ipynb'))
SOURCES = ('fastbook', 'the book', "book's", 'chapter 12', 'et al', 'paper', 'reference notebook', 'seed notebook',
           'transcript', 'printed by', 'karpathy', 'fast.ai', 'fastai course', 'documentation', 'published')
OTHER_LESSON = re.compile(r'\blessons? \d+\b', re.I)
TEXT_MIMES = ('text/plain', 'text/markdown', 'text/html')
NUM = re.compile(r'(?<![\w.\-])[-−]?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:[eE]([-+−]?\d+))?(\s?%)?(?![\w])')

def _text(x): return ''.join(x) if isinstance(x, list) else str(x)

def numbers(text):
    "Each number in `text`: (value, decimals, is_percent, written with a thousands separator or exponent, match)."
    for m in NUM.finditer(text):
        ip, frac, exp, pct = m.groups()
        v = float(ip.replace(',', '') + (frac or ''))
        dec = len(frac) - 1 if frac else 0
        if exp:
            e = int(exp.replace('−', '-')); v *= 10 ** e; dec = max(0, dec - e)
        yield v, dec, bool(pct), bool(exp) or ',' in ip, m

def is_checked(v, dec, pct, fancy, txt):
    "Whether a prose number is one this test checks (see the module docstring)."
    if pct or dec > 0 or fancy: return True
    if v < 1000: return False
    return not (1900 <= v <= 2099 and ',' not in txt)

def output_numbers(nb):
    "Every number an output of `nb` prints or a code cell of `nb` writes, as floats, each percentage also as its fraction."
    vals = set()
    for c in nb['cells']:
        texts = [_text(c['source'])] if c['cell_type'] == 'code' else []
        for o in c.get('outputs', []):
            texts += [_text(o['text'])] if 'text' in o else []
            texts += [_text(o.get('data', {})[m]) for m in TEXT_MIMES if m in o.get('data', {})]
        for t in texts:
            for v, dec, pct, _, _ in numbers(t):
                vals.add(abs(v)); vals.add(abs(v) * (0.01 if pct else 100))
    return vals

def backed(v, dec, pct, outs):
    "Whether some output number shows `v` at `dec` decimals (as a fraction or a percentage)."
    want = [abs(v)] + ([abs(v) / 100] if pct else [abs(v) * 100, abs(v) / 100])
    tol = 0.5 * 10 ** -dec + 1e-9
    for w in want:
        t = tol if w == abs(v) else tol * (0.01 if w < abs(v) else 100)
        if any(abs(o - w) <= t for o in outs): return True
    return False

def prose(src):
    "Markdown with code spans, link targets, URLs and HTML tags taken out."
    src = re.sub(r'```.*?```', ' ', src, flags=re.S)
    src = re.sub(r'`[^`]*`', ' ', src)
    src = re.sub(r'\]\([^)]*\)', ']', src)
    src = re.sub(r'https?://\S+', ' ', src)
    return re.sub(r'<[^>]+>', ' ', src)

def sentences(text):
    return re.split(r'(?<=[.!?;:])\s+(?=[A-Z(*"`\[])|\n\s*\n|\n\s*[-*] ', text)

def unbacked(nb_path):
    "Every (cell index, number, sentence) of `nb_path`'s markdown that is checked, not backed and not quoted."
    nb = json.loads(nb_path.read_text(encoding='utf-8'))
    outs, bad = output_numbers(nb), []
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] != 'markdown': continue
        for s in sentences(prose(_text(c['source']))):
            if any(k in s.lower() for k in SOURCES) or OTHER_LESSON.search(s): continue
            for v, dec, pct, fancy, m in numbers(s):
                if is_checked(v, dec, pct, fancy, m.group()) and not backed(v, dec, pct, outs):
                    bad.append((i, m.group().strip(), ' '.join(s.split())[:200]))
    return bad

def test_found(): assert LESSONS

def test_rules():
    "The rules themselves, on toy text: what is checked, what backs it, what is quoted."
    outs = output_numbers({'cells': [{'cell_type': 'code', 'source': 'split = 0.8',
                                       'outputs': [{'text': 'loss 0.3726, 1590 s, 1.48% illegal, 9,998 lines'}]}]})
    ok = lambda s: [(v, d, p) for v, d, p, f, m in numbers(s) if is_checked(v, d, p, f, m.group()) and not backed(v, d, p, outs)]
    assert ok('about 0.37 and 0.373, in 1,590 s; 0.0148 of it; 9998 lines; the first 80%') == []
    assert ok('LMModel7 with 64 units for 15 epochs, Merity 2017, a 2-layer RNN, Q17') == []
    assert [v for v, *_ in ok('about 0.38, 1,591 s, 12%')] == [0.38, 1591.0, 12.0]
    assert ok('5.1e-05') == [(5.1e-05, 6, False)]
    quoted = lambda s: any(k in s.lower() for k in SOURCES) or bool(OTHER_LESSON.search(s))
    assert quoted('fastbook printed 0.47') and quoted('lesson 14 measured 0.03') and not quoted('we measured 0.03')

@pytest.mark.parametrize('nb', LESSONS, ids=[p.name for p in LESSONS])
def test_prose_numbers_are_printed(nb):
    bad = unbacked(nb)
    assert not bad, f"{nb.name}: numbers in the prose that no output prints (print them, or name the source):\n" + \
        '\n'.join(f"  cell {i}: {n!r} in: {s}" for i, n, s in bad)
