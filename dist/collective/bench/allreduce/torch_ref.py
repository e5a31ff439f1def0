"""Reference numbers for cmd allreduce: PyTorch's own Gloo backend.

    python3 dist/collective/bench/allreduce/torch_ref.py 2   # or 4 ranks

Runs the same measurement as main.go (float32 sum all-reduce of zeros, the
same sizes and iteration counts, the slowest rank's mean time) through
torch.distributed's ProcessGroupGloo (Debian's python3-torch 1.13.1, which
links the same libgloo), with the ranks as processes on loopback. Prints
one line per size: bytes, time per all-reduce in microseconds, busbw GB/s.
"""
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def sizes():
    s = 1 << 10
    while s <= 256 << 20:
        yield s
        s *= 4


def rank_main(rank, world, port):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world,
                            init_method=f"tcp://127.0.0.1:{port}")
    for nbytes in sizes():
        t = torch.zeros(nbytes // 4)
        iters = min(max((64 << 20) // nbytes, 3), 300)
        dist.all_reduce(t)  # warm-up
        dist.barrier()
        start = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(t)
        per = torch.tensor([(time.perf_counter() - start) / iters], dtype=torch.float64)
        dist.all_reduce(per, op=dist.ReduceOp.MAX)
        if rank == 0:
            bus = nbytes * 2 * (world - 1) / world / per.item() / 1e9
            print(f"{nbytes:>10d} {per.item() * 1e6:>12.1f} us {bus:>8.3f} GB/s", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    world = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    mp.spawn(rank_main, args=(world, 29500 + os.getpid() % 1000), nprocs=world)
