"The committed diagrams are exactly what the drawing code makes: regenerating them changes nothing."
import io
from pathlib import Path
import pytest
from PIL import Image
from matplotlib import __version__ as mpl_version
from bborzan.diagrams import DIAGRAMS, diagram_png

IMAGES = Path(__file__).parents[1]/'nbs'/'images'

@pytest.mark.parametrize('name', DIAGRAMS)
def test_diagram_is_reproducible(name):
    assert diagram_png(name) == diagram_png(name)

@pytest.mark.parametrize('name', DIAGRAMS)
def test_committed_diagram_is_current(name):
    path = IMAGES/f'{name}.png'
    assert path.exists(), f"{path} is missing: run bborzan.diagrams.save_diagrams('nbs/images') and commit it"
    made_with = Image.open(path).info.get('Software', '').split(',')[0]
    if made_with != f'Matplotlib version{mpl_version}':
        pytest.skip(f"{path.name} was made with {made_with!r}, this is matplotlib {mpl_version}: pixels may differ")
    assert path.read_bytes() == diagram_png(name), \
        f"{path} differs from what the code draws: run bborzan.diagrams.save_diagrams('nbs/images') and commit it"

def test_every_diagram_is_committed():
    assert sorted(p.stem for p in IMAGES.glob('*.png')) == sorted(DIAGRAMS)
