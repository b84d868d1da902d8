"""Walk an ONNX graph and report op types outside an allowed set (default: ``MOBILE_OPS``).

Used by the model tests and by export to prove that a student graph only contains ops that
mobile runtimes and NPUs accept. Needs the ``onnx`` package only when given a path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union

from styleforge.train.models.mobile import MOBILE_OPS


def _load(model: Union[str, Path, Any]):
    if isinstance(model, (str, Path)):
        import onnx

        return onnx.load(str(model), load_external_data=False)
    return model


def _walk(graph) -> Iterable:
    """Every node of ``graph`` including those inside If/Loop/Scan subgraphs."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.g is not None and len(attribute.g.node):
                yield from _walk(attribute.g)
            for subgraph in attribute.graphs:
                yield from _walk(subgraph)


def onnx_op_types(model: Union[str, Path, Any]) -> dict[str, int]:
    """Op type -> count over the whole graph (subgraphs included). ``model``: path or ModelProto."""
    graph = _load(model).graph
    return dict(sorted(Counter(node.op_type for node in _walk(graph)).items()))


def non_mobile_ops(model: Union[str, Path, Any], allowed: Iterable[str] = MOBILE_OPS) -> dict[str, int]:
    """Op types (with counts) in ``model`` that are not in ``allowed``; empty when all are fine."""
    allowed = set(allowed)
    return {op: n for op, n in onnx_op_types(model).items() if op not in allowed}


def check_mobile_ops(model: Union[str, Path, Any], allowed: Iterable[str] = MOBILE_OPS) -> None:
    """Raise ``ValueError`` naming every op type outside ``allowed``."""
    bad = non_mobile_ops(model, allowed)
    if bad:
        listed = ", ".join(f"{op} x{n}" for op, n in bad.items())
        raise ValueError(f"graph has ops outside the mobile op set: {listed}")
