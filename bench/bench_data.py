"""Time the seed's data pipeline against bborzan's, at the seed's full size: 100,000 bor-bor-zan games.

Both start from the same game texts (generating them is not timed) and stop when every training and validation
batch has been read once. The seed's way: split on ' ', `L(...)` numericalisation, a list of tensor pairs,
`group_chunks`, fastai `DataLoaders.from_dsets` (`bborzan.datasets.seed_borzan_dls`). Ours: `BorzanCorpus.from_docs`
(split, `Vocab.encode`) and `lm_dls` (the stream on the device, batches sliced from a view). Prints the median of
`--repeats` runs of each, and the ratio.

    python bench/bench_data.py                      # 100,000 games, bs=128, sl=6 (the seed's settings)
    python bench/bench_data.py --games 10000 --repeats 5
"""
import argparse, platform, time, warnings
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
import torch
from bborzan.core import get_device
from bborzan.datasets import bench_borzan_data

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--games', type=int, default=100_000, help='number of games (default: the seed\'s 100,000)')
    p.add_argument('--bs', type=int, default=128, help='batch size (default 128, as the seed)')
    p.add_argument('--sl', type=int, default=6, help='tokens per window (default 6, as the seed)')
    p.add_argument('--repeats', type=int, default=3, help='timed runs of each pipeline (default 3)')
    p.add_argument('--seed', type=int, default=42, help='random seed of the games')
    p.add_argument('--device', default=None, help="device for our batches (default: bborzan's choice)")
    a = p.parse_args()
    from bborzan.game import generate_games
    t = time.perf_counter()
    docs = generate_games(a.games, seed=a.seed).docs()
    print(f"generated {len(docs):,} games in {time.perf_counter()-t:.1f} s (not timed below)")
    dev = get_device(a.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"our batches on {dev}; bs={a.bs}, sl={a.sl}, {a.repeats} repeats")
    r = bench_borzan_data(docs, bs=a.bs, sl=a.sl, repeats=a.repeats, device=dev)
    fmt = lambda ts: ', '.join(f'{t:.3f}' for t in ts)
    print(f"seed pipeline: median {r['seed_s']:.3f} s  (runs: {fmt(r['seed_runs'])}; {r['seed_batches']:,} batches)")
    print(f"bborzan      : median {r['fast_s']:.3f} s  (runs: {fmt(r['fast_runs'])}; {r['fast_batches']:,} batches)")
    print(f"ratio        : {r['ratio']:.1f}x faster")

if __name__ == '__main__': main()
