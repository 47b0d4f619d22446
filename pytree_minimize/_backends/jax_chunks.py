"""How the flat vector enters a compiled evaluation on a tree of many leaves: in chunks.

The only module that knows how XLA treats one flat input sliced into thousands of leaves, and
what keeps that compile about as fast as plain `jax.jit` on the tree itself.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .._core.tree import Layout

#: From this many leaves on, a compiled evaluation separates the flat vector into chunks
#: (`chunk_bounds`) before anything reads a leaf (`benchmarks/large_trees.py`). XLA
#: fuses each leaf's slice into the kernels that use the leaf, with the slice's offset written
#: into the kernel: out of one flat vector no two leaves share a kernel, so every leaf costs
#: kernels of its own to compile, and XLA's common-subexpression pass compares every pair of
#: them (quadratic: 9 s of a 36 s compile at 2,000 leaves). Out of separate chunks, like leaves
#: at like places in their chunks share kernels, and the comparisons stay within a chunk.
MANY_LEAVES = 64


def chunk_bounds(layout: Layout) -> tuple[tuple[int, int], ...] | None:
    """`(start, stop)` of each chunk of the flat vector, or None to keep it whole.

    About sqrt(leaves) leaves per chunk: a chunk of k leaves leaves k distinct places to compile
    kernels for, and each of the leaves / k chunks is a kernel of its own to cut out.
    """
    specs = layout.leaves
    if len(specs) < MANY_LEAVES or layout.n == 0:
        return None
    per_chunk = math.isqrt(len(specs) - 1) + 1
    starts = [specs[i].offset for i in range(0, len(specs), per_chunk)]
    return tuple(zip(starts, [*starts[1:], layout.n], strict=True))


#: Chunks made per `cond`: XLA runs a computation of more kernels than this on its thread pool
#: (about 20 us more per call on a 2-core machine), fewer inline.
CHUNKS_PER_COND = 8


def in_chunks(flat: jax.Array, bounds: tuple[tuple[int, int], ...]) -> jax.Array:
    """`flat` again (traceable), rebuilt from chunks that XLA keeps in buffers of their own.

    XLA simplifies slices of a concatenation to slices of its operands, so the leaves are sliced
    from the chunks. The chunks come out of `cond`s whose branches XLA cannot merge into their
    users: the predicate, false only at NaN, is not known before the run, and both branches are
    the same, so the value is `flat` either way. Separate inputs would keep chunks apart too, but
    cost a host-to-device transfer each per call.
    """
    same = flat[0] == flat[0]
    chunks: list[jax.Array] = []
    for first in range(0, len(bounds), CHUNKS_PER_COND):
        group = bounds[first : first + CHUNKS_PER_COND]

        def separate(flat: jax.Array, group: tuple[tuple[int, int], ...] = group) -> tuple:
            return tuple(flat[start:stop] for start, stop in group)

        chunks += jax.lax.cond(same, separate, separate, flat)
    return jnp.concatenate(chunks)
