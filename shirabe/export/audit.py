"""Op audits of ONNX graphs for runtimes with a restricted op set (Unity Sentis).

Unity Sentis imports a fixed set of ONNX operators, runs no control flow
(``If``, ``Loop``, ``Scan``) or sequence/optional types, and works best with
static shapes. :func:`audit_graph` lists everything in a graph that breaks
those rules; :func:`check_graph` raises :class:`OpAuditError` naming the
offending ops, so an export fails instead of producing a file Unity rejects.

``UNITY_SENTIS_OPS`` is the allow-list: operators of the default ONNX domain
that Sentis 2.x documents as supported and that exported PyTorch models use.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from shirabe.cli import InputError

UNITY_SENTIS_MAX_OPSET = 15

#: control flow and sequence/optional operators: never allowed
FORBIDDEN_OPS = frozenset({
    "If", "Loop", "Scan", "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase",
    "SequenceInsert", "SequenceLength", "SequenceMap", "SplitToSequence", "ConcatFromSequence",
    "Optional", "OptionalGetElement", "OptionalHasElement",
})

UNITY_SENTIS_OPS = frozenset({
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
    "AveragePool", "BatchNormalization", "Cast", "CastLike", "Ceil", "Celu", "Clip", "Concat", "Constant",
    "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "Div", "Einsum",
    "Elu", "Equal", "Erf", "Exp", "Expand", "Flatten", "Floor", "Gather", "GatherElements", "GatherND",
    "Gelu", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "HardSigmoid",
    "HardSwish", "Identity", "InstanceNormalization", "IsInf", "IsNaN", "LayerNormalization", "LeakyRelu",
    "Less", "LessOrEqual", "Log", "LogSoftmax", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mod", "Mul",
    "Neg", "Not", "OneHot", "Or", "Pad", "Pow", "PRelu", "Range", "Reciprocal", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
    "ReduceSumSquare", "Relu", "Reshape", "Resize", "Round", "ScatterElements", "ScatterND", "Selu",
    "Shape", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softmax", "Softplus", "Softsign",
    "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu", "Tile",
    "TopK", "Transpose", "Trilu", "Unsqueeze", "Where", "Xor",
})


class OpAuditError(InputError):
    """A graph uses something the target runtime cannot run; the message names it."""


@dataclass
class AuditReport:
    name: str
    op_counts: Counter = field(default_factory=Counter)
    disallowed: dict[str, int] = field(default_factory=dict)  # op type -> count
    dynamic_io: list[str] = field(default_factory=list)  # "input x dim 1 'T'"
    opset: int = 0
    max_opset: int | None = None

    @property
    def ok(self) -> bool:
        opset_ok = self.max_opset is None or self.opset <= self.max_opset
        return not self.disallowed and not self.dynamic_io and opset_ok

    def problems(self) -> list[str]:
        out = []
        if self.disallowed:
            out.append("ops outside the allow-list: " + ", ".join(f"{op} ×{n}" for op, n in sorted(self.disallowed.items())))
        if self.dynamic_io:
            out.append("dynamic shapes: " + "; ".join(self.dynamic_io))
        if self.max_opset is not None and self.opset > self.max_opset:
            out.append(f"opset {self.opset} > {self.max_opset}")
        return out


def _iter_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _iter_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _iter_nodes(g)


def _dynamic_dims(values, kind: str) -> list[str]:
    out = []
    for v in values:
        ttype = v.type.tensor_type
        if not ttype.HasField("shape"):
            out.append(f"{kind} {v.name} has no shape")
            continue
        for i, d in enumerate(ttype.shape.dim):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                out.append(f"{kind} {v.name} dim {i} {d.dim_param or '?'!r}")
    return out


def audit_graph(
    model: str | Path | onnx.ModelProto,
    allowed: frozenset[str] = UNITY_SENTIS_OPS,
    forbidden: frozenset[str] = FORBIDDEN_OPS,
    static_shapes: bool = True,
    max_opset: int | None = UNITY_SENTIS_MAX_OPSET,
) -> AuditReport:
    """Count the graph's ops and collect what breaks the rules (see :class:`AuditReport`)."""
    name = str(model) if not isinstance(model, onnx.ModelProto) else (model.graph.name or "graph")
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    report = AuditReport(name=name, max_opset=max_opset)
    report.opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    for node in _iter_nodes(model.graph):
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        report.op_counts[op] += 1
        if op in forbidden or op.startswith("Sequence") or op not in allowed:
            report.disallowed[op] = report.disallowed.get(op, 0) + 1
    if static_shapes:
        init_names = {i.name for i in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in init_names]
        report.dynamic_io = _dynamic_dims(inputs, "input") + _dynamic_dims(model.graph.output, "output")
    return report


def check_graph(model: str | Path | onnx.ModelProto, **kwargs) -> AuditReport:
    """:func:`audit_graph`, raising :class:`OpAuditError` (one line, naming the ops) on any problem."""
    report = audit_graph(model, **kwargs)
    if not report.ok:
        raise OpAuditError(f"{report.name}: not runnable in Unity Sentis: {'; '.join(report.problems())}")
    return report
