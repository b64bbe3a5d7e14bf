"""One owner for randomness: every seeded draw in dl_core goes through here.

Many students share one process, so nobody's code may touch the global RNG unguarded: `generator(seed)`
gives a private `torch.Generator`; `seeded(seed)` runs a block under the global RNG seeded to `seed`
(for code that only takes the global RNG, such as `nn.Module` initialisation or a transform's random
parameters) inside `torch.random.fork_rng`, under one process-wide lock, so two sessions never
interleave and the caller's RNG state is restored afterwards.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

_LOCK = threading.RLock()  # fork_rng saves/restores the global RNG: one seeded block at a time (re-entrant)


def generator(seed: int) -> torch.Generator:
    """A private CPU generator seeded with `seed` (never the global RNG)."""
    return torch.Generator().manual_seed(int(seed))


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with the global RNG seeded to `seed`, restored afterwards; one block at a time."""
    with _LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
