"""Planning k-sort's channel orders from calibration data.

Trukhanov & Soloveychik sort K channels by magnitude so that channels of
similar size share a block. With real activations we can aim at what the
block format actually costs: the error it adds to attention. For K that is
the error of the scores q . k, ~ sum_c E[q_c^2] E[e_c^2] (e: K's BFP rounding
error, measured); for V the error after the output projection,
~ sum_c ||W_o[:, c]||^2 E[e_c^2] over the query heads that read channel c.

K's RoPE pairs can be grouped two ways (ksort.py): pair slots (j, j + D/2) of
the rotate-half layout, where a group of pairs fills one block of first
halves and one of second halves, or side by side, where a group fills one
block. For each layout and each of two starting orders (as is, and by
descending magnitude: the paper's sort) a local search swaps items between
groups while the weighted error on the calibration rows falls; the best
result wins, per layer for K's layout (all heads share one RoPE), per head
for the grouping. Only group *membership* matters, never order within one.
K keeps its order unless the plan cuts its error proxy by K_MIN_GAIN.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from llmc.ir.dtypes import DType
from llmc.ir.formats import quantize_block
from llmc.passes.quant.calibrate import KVSample

MAX_PASSES = 4
# K is reordered only when planning cuts its proxy error by this fraction (i.e.
# outlier channels are present). The score proxy is first order and softmax
# amplifies score errors unevenly: on llmc-tiny (no K outliers) 5-15% proxy
# gains came with slightly *worse* perplexity, while V's proxy, linear through
# the output projection, predicts well (bench/results/quant.md).
K_MIN_GAIN = 0.2
Items = list[np.ndarray]


def block_error(rows: np.ndarray, weight: np.ndarray, fmt: DType, centered: bool = False
                ) -> float:
    """sum_c weight_c * mean over rows of c's squared rounding error; the rows'
    channels are whole blocks of fmt. centered: the error's variance over rows
    instead (for K: an error that is the same for every key shifts all of a
    query's scores alike, which softmax ignores)."""
    e = quantize_block(rows.astype(np.float32), fmt).astype(np.float64) - rows
    if centered:
        e = e - e.mean(axis=0)
    return float((e**2).mean(axis=0) @ weight)


def search(items: Items, per: int, cost: Callable[[Items], float]) -> tuple[Items, float]:
    """Local search over groups of `per` consecutive items: swap two items of
    different groups while the summed cost falls. Returns (items, cost)."""
    groups = [list(items[i:i + per]) for i in range(0, len(items), per)]
    costs = [cost(g) for g in groups]
    for _ in range(MAX_PASSES if len(groups) > 1 else 0):
        improved = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                for i in range(per):
                    for j in range(per):
                        ga, gb = list(groups[a]), list(groups[b])
                        ga[i], gb[j] = groups[b][j], groups[a][i]
                        ca, cb = cost(ga), cost(gb)
                        if ca + cb < (costs[a] + costs[b]) * (1 - 1e-9):
                            groups[a], groups[b], costs[a], costs[b] = ga, gb, ca, cb
                            improved = True
        if not improved:
            break
    return [it for g in groups for it in g], float(sum(costs))


def best_grouping(x: np.ndarray, items: Items, per: int,
                  cost: Callable[[Items], float]) -> tuple[Items, float]:
    """The better search result of two starts: as given, and by descending energy."""
    energy = np.array([(x[:, it] ** 2).mean() for it in items])
    starts = [items, [items[i] for i in np.argsort(-energy, kind="stable")]]
    return min((search(s, per, cost) for s in starts), key=lambda r: r[1])


def plan_k(k: np.ndarray, q_imp: np.ndarray, fmt: DType) -> tuple[list[np.ndarray], float]:
    """Per KV head: (kmap rows, total cost) for k (N, G, D) and query importance
    (G, D), choosing the better layout for the whole layer."""
    _, g, d = k.shape
    half, b = d // 2, fmt.block
    results = {}
    for layout in ("half", "pairs"):
        if (layout == "half" and half % b) or (layout == "pairs" and (b % 2 or d % b)):
            continue
        rows, total = [], 0.0
        for h in range(g):
            x, w = k[:, h].astype(np.float64), q_imp[h]
            pairs = [np.array([j, j + half]) for j in range(half)]
            if layout == "half":
                def cost(grp: Items, x=x, w=w) -> float:
                    first = np.array([p[0] for p in grp])
                    return block_error(x[:, first], w[first], fmt, True) + \
                        block_error(x[:, first + half], w[first + half], fmt, True)
                order, c = best_grouping(x, pairs, b, cost)
                firsts = np.array([p[0] for p in order])
                rows.append(np.concatenate([firsts, firsts + half]))
            else:
                def cost(grp: Items, x=x, w=w) -> float:
                    ch = np.concatenate(grp)
                    return block_error(x[:, ch], w[ch], fmt, True)
                order, c = best_grouping(x, pairs, b // 2, cost)
                rows.append(np.concatenate(order))
            total += c
        results[layout] = (rows, total)
    identity = [np.arange(d)] * g
    if not results:
        return identity, 0.0
    best = min(results.values(), key=lambda r: r[1])
    base = sum(block_error(k[:, h].astype(np.float64), q_imp[h], fmt, True) for h in range(g))
    return best if best[1] < (1 - K_MIN_GAIN) * base else (identity, base)


def plan(sample: KVSample, wo: np.ndarray | None, heads: int, fmt: DType
         ) -> tuple[np.ndarray, np.ndarray]:
    """(kmap, vmap), each (G, D): new position p of KV head g holds old channel
    map[g, p]."""
    _, g, d = sample.k.shape
    group = heads // g
    q_imp = sample.q_ms.reshape(g, group, d).sum(axis=1)
    kmap = np.stack(plan_k(sample.k, q_imp, fmt)[0])
    vmap = np.tile(np.arange(d), (g, 1))
    if d % fmt.block == 0:
        wcol = np.ones((heads, d)) if wo is None else \
            (wo.astype(np.float64) ** 2).sum(axis=0).reshape(heads, d)
        for h in range(g):
            x, w = sample.v[:, h].astype(np.float64), wcol[h * group:(h + 1) * group].sum(0)

            def cost(grp: Items, x=x, w=w) -> float:
                ch = np.concatenate(grp)
                return block_error(x[:, ch], w[ch], fmt)

            order, _ = best_grouping(x, [np.array([c]) for c in range(d)], fmt.block, cost)
            vmap[h] = np.concatenate(order)
    return kmap, vmap
