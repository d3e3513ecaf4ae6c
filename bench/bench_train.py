"""Time one training epoch on bor-bor-zan: the seed's pipeline against bborzan's, at the seed's full size.

Both sides start from the same 100,000 games (generating them is not timed) and train the same models, our
`LMModel4` (64 hidden) and `LMModel6` (LSTM, 2 layers of 128), for one epoch with a one-cycle schedule, then read the
validation set once. Building the data is timed apart and left out of tokens/s.

- seed     : the seed notebook's pipeline: `seed_borzan_dls` (split, `L` numericalisation, a list of tensor pairs,
             `group_chunks`, `DataLoaders.from_dsets`) and a fastai `Learner` with `ModelResetter`, `fit_one_cycle`;
             bs=128, sl=6.
- ours_BxS : `BorzanCorpus.dls` (batches sliced from one tensor on the device) and `bborzan.train.fit`, the plain
             loop, at batch shape bs=B, sl=S. At the seed's shape (128x6) the difference is the pipeline alone; the
             others add a better shape: 256x64 (longer windows, a good GPU shape) and 1024x16 (wider batches, what
             a CPU likes best for these small RNNs).

tokens/s counts every token read in the epoch (training and validation passes) over the epoch's wall time; each
figure is the median of --repeats epochs, the configurations alternating, after an untimed warm-up on a small slice.

    python bench/bench_train.py                          # 100,000 games, lm4 and lm6, 3 repeats
    python bench/bench_train.py --games 20000 --repeats 1 --models lm4
"""
import argparse, platform, time, warnings
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
import torch
from bborzan.core import get_device
from bborzan.train import bench_train, bench_table

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--games', type=int, default=100_000, help="number of games (default: the seed's 100,000)")
    p.add_argument('--models', default='lm4,lm6', help='comma-separated registry names (default lm4,lm6)')
    p.add_argument('--bs', type=int, default=128, help="batch size of the seed's runs (128)")
    p.add_argument('--sl', type=int, default=6, help="window of the seed's runs (6)")
    p.add_argument('--shapes', default='128x6,256x64,1024x16', help='our batch shapes, BSxSL, comma-separated (128x6,256x64,1024x16)')
    p.add_argument('--repeats', type=int, default=3, help='timed epochs per configuration; medians are reported (3)')
    p.add_argument('--lr', type=float, default=3e-3, help='one-cycle peak learning rate (3e-3)')
    p.add_argument('--no-seed', action='store_true', help="skip the seed's pipeline (the slow side)")
    p.add_argument('--device', default=None, help="device for our side (default: bborzan's choice)")
    a = p.parse_args()
    dev = get_device(a.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
          f"ours on {dev}; {a.games:,} games, {a.repeats} repeats")
    t = time.perf_counter()
    shapes = tuple(tuple(int(v) for v in sh.split('x')) for sh in a.shapes.split(','))
    res = bench_train(a.games, models=tuple(a.models.split(',')), bs=a.bs, sl=a.sl, shapes=shapes,
                      repeats=a.repeats, lr=a.lr, seed_side=not a.no_seed, device=dev)
    b = res['build_seconds']
    print(f"\nbuilding the data (not in tokens/s): ours {b['ours']:.2f} s" + (f", seed's {b['seed']:.2f} s" if 'seed' in b else ''))
    print(f"one epoch (train + validation), median of {a.repeats}:\n")
    print(bench_table(res))
    print(f"\n(total {time.perf_counter() - t:.0f} s; timings on a shared machine vary from run to run: read the medians)")

if __name__ == '__main__': main()
