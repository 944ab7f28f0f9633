"""Paths of the network's graph named for diagnoses: which units tell a path from its siblings.

The graph itself (nodes, edges, path counts and paths, names) is :mod:`chainrule.derive.graph`;
the chain-rule engine's factors give each edge its local derivative. Paths here always pass
through the outputs (people write ``dE/dout_o1 * dout_o1/dnet_o1`` also where softmax with
cross-entropy fuses the two).
"""

from __future__ import annotations

from typing import Sequence

from chainrule.derive.counts import the
from chainrule.derive.graph import Graph, Node


def through(graph: Graph, path: tuple[Node, ...], siblings: list[tuple[Node, ...]]) -> str:
    """The units that tell a path from its siblings (see :func:`through_label`)."""
    shared = set.intersection(*[{graph.name(n) for n in p} for p in siblings]) if len(siblings) > 1 else set()
    inner = [graph.name(n) for n in path[1:-1] if n[0] in ("out", "net")]
    return through_label(inner, shared, graph.name(path[-1]))


def group_phrase(graph: Graph, chosen: list[tuple[Node, ...]], siblings: list[tuple[Node, ...]]) -> tuple[str, str]:
    """Some of a parameter's paths named as a group (see :func:`paths_phrase`), and the verb."""
    inner = {p: [graph.name(n) for n in p[1:-1] if n[0] in ("out", "net")] for p in siblings}
    others = [inner[p] for p in siblings if p not in chosen]
    return paths_phrase([inner[p] for p in chosen], others, [through(graph, p, siblings) for p in chosen])


def through_label(inner: Sequence[str], shared: set[str], last: str) -> str:
    """The units that tell a path from its siblings: ``out_o2`` where every path passes out_h1;
    ``out_o1, net_o3`` through a softmax layer. ``inner`` names the path's out_ and net_ nodes in
    order, ``shared`` those every sibling passes; ``last`` is shown when nothing else tells."""
    own = [n for n in inner if n not in shared] or [n for n in inner if n.startswith("out_")]
    outs = {n[len("out_"):] for n in own if n.startswith("out_")}
    shown = [n for n in own if n.startswith("out_") or n[len("net_"):] not in outs]
    return ", ".join(shown) if shown else last


def paths_phrase(chosen: Sequence[Sequence[str]], others: Sequence[Sequence[str]], labels: Sequence[str]) -> tuple[str, str]:
    """Some paths of a parameter named as a group, and the verb: ``("the path through out_o2",
    "is")``, ``("the 2 paths through out_h2", "are")`` where one unit is on all of them and on no
    other path, else ``("the paths through A and B", "are")``. ``chosen`` and ``others`` are the
    inner node names of the paths in the group and of the rest; ``labels`` each chosen one's own."""
    if len(chosen) == 1:
        return f"the path through {labels[0]}", "is"
    elsewhere = {name for path in others for name in path}
    common = [n for n in chosen[0] if all(n in path for path in chosen[1:]) and n not in elsewhere]
    units = [n for n in common if n.startswith("out_")] or common
    if units:
        return f"{the(len(chosen), 'path')} through {units[0]}", "are"
    return "the paths through " + ", ".join(labels[:-1]) + f" and {labels[-1]}", "are"

