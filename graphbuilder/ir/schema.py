"""Op declarations as data: typed parameters (`Param`), op definitions (`OpDef`) and tensor specs.

This module is the single place that says what a parameter value may be. The palette, the parameter forms
in the editor, the docs and the checks on load are all generated from these declarations. Nothing here
imports torch: the torch side of an op (its module builder and shape inference) is attached as opaque
callables by `graphbuilder.ops`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphbuilder.ir.errors import GraphError

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "bool")

# Parameter kinds. "ints" is a tuple of ints, "int_or_ints" accepts either (kernel_size=3 or (3, 5)).
KINDS = ("int", "float", "bool", "str", "enum", "ints", "floats", "int_or_ints", "float_or_floats", "json")


@dataclass(frozen=True)
class TensorSpec:
    """Shape and dtype of one tensor flowing along an edge. `shape` is a tuple of ints."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    def __str__(self) -> str:
        dims = ", ".join(map(str, self.shape))
        return f"({dims})" if self.dtype == "float32" else f"({dims}) {self.dtype}"

    def to_json(self) -> dict[str, Any]:
        """JSON form used by the editor: ``{"shape": [...], "dtype": "float32"}``."""
        return {"shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class Param:
    """One typed op parameter.

    Attributes:
        kind: one of `KINDS`.
        default: value used when the user gives none; `None` means the parameter is optional when
            `optional` is true, else required.
        min, max: inclusive bounds for numbers (applied to every element of tuple kinds).
        choices: allowed values for ``kind="enum"``.
        length: required tuple length for tuple kinds (None: any length >= 1).
        optional: whether `None` is an allowed value.
        doc: one line shown in the editor's parameter form.
        name: filled in by the op declaration.
    """

    kind: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    length: int | None = None
    optional: bool = False
    doc: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GraphError(f"parameter {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "enum" and not self.choices:
            raise GraphError(f"parameter {self.name!r}: enum parameters need `choices`")

    @property
    def required(self) -> bool:
        """True when the user must give a value (no default and `None` not allowed)."""
        return self.default is None and not self.optional

    def validate(self, value: Any, where: str = "") -> Any:
        """Return `value` in canonical form (tuples for tuple kinds) or raise `GraphError` saying the fix."""
        label = f"{where}parameter {self.name!r}"
        if value is None:
            if self.optional:
                return None
            raise GraphError(f"{label} is required ({self.describe()})")
        kind = self.kind
        if kind in ("int_or_ints", "float_or_floats"):
            kind = kind.split("_or_")[0] + "s" if isinstance(value, (list, tuple)) else kind.split("_or_")[0]
        if kind == "json":
            return value
        if kind in ("ints", "floats"):
            if not isinstance(value, (list, tuple)) or not value:
                raise GraphError(f"{label} must be a non-empty list of {kind[:-1]}s, got {value!r}")
            if self.length is not None and len(value) != self.length:
                raise GraphError(f"{label} must have {self.length} elements, got {len(value)}: {value!r}")
            return tuple(self._scalar(kind[:-1], v, label) for v in value)
        return self._scalar(kind, value, label)

    def _scalar(self, kind: str, value: Any, label: str) -> Any:
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise GraphError(f"{label} must be an integer, got {value!r}")
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise GraphError(f"{label} must be a finite number, got {value!r}")
            value = float(value)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise GraphError(f"{label} must be true or false, got {value!r}")
        elif kind == "str":
            if not isinstance(value, str):
                raise GraphError(f"{label} must be a string, got {value!r}")
        elif kind == "enum":
            if value not in self.choices:
                raise GraphError(f"{label} must be one of {list(self.choices)}, got {value!r}")
        if kind in ("int", "float"):
            if self.min is not None and value < self.min:
                raise GraphError(f"{label} must be >= {self.min}, got {value!r}")
            if self.max is not None and value > self.max:
                raise GraphError(f"{label} must be <= {self.max}, got {value!r}")
        return value

    def describe(self) -> str:
        """Short human description: kind, range or choices, default."""
        parts = [self.kind]
        if self.choices:
            parts.append("one of " + ", ".join(map(repr, self.choices)))
        if self.min is not None or self.max is not None:
            lo = "-inf" if self.min is None else self.min
            hi = "inf" if self.max is None else self.max
            parts.append(f"in [{lo}, {hi}]")
        if self.default is not None:
            parts.append(f"default {self.default!r}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """JSON description used to generate the editor's parameter form."""
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        return {
            "name": self.name, "kind": self.kind, "default": default, "min": self.min, "max": self.max,
            "choices": list(self.choices), "length": self.length, "optional": self.optional,
            "required": self.required, "doc": self.doc,
        }


# Signature of the torch-side callables attached by graphbuilder.ops (kept opaque here).
InferFn = Callable[["OpDef", dict[str, Any], Sequence[TensorSpec]], "Inference"]


@dataclass(frozen=True)
class Inference:
    """What shape inference learned about one node: output specs, parameter count, whether the torch
    call returns a tuple (then compiled code indexes it, even for one output), and the shapes of the
    module's state (parameters and buffers) so trained weights are kept exactly while they still fit."""

    outputs: tuple[TensorSpec, ...]
    num_params: int = 0
    packed: bool = False
    weight_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()


@dataclass(frozen=True)
class Example:
    """One example call of an op: what its tests run (compiled against `ref`, export parity, random DAGs).

    Attributes:
        inputs: one `TensorSpec` per input tensor (a variadic port takes the remaining ones).
        params: the node's params for this call.
        ref: a hand-written torch reference (PyTorch's OpInfo habit), called as
            ``ref(*tensors, **weights)`` where `weights` is the node's state_dict with dots as underscores;
            it returns the expected output (a tuple for several outputs). None: compared with the op's own
            torch call, for ops whose references live in their own tests.
        low, high: the range input values are drawn from (uniform floats, or integers in [low, high)); unset:
            standard normal floats, integers in [0, 2), random bools.
        atol: tolerance against `ref` where the op re-expresses it (0: bitwise equal).
    """

    inputs: tuple[TensorSpec, ...]
    params: dict[str, Any] = field(default_factory=dict)
    ref: Callable[..., Any] | None = None
    low: float | None = None
    high: float | None = None
    atol: float = 0.0


@dataclass(frozen=True)
class OpDef:
    """The one declaration of an op. Everything else (palette, forms, docs, checks) is generated from it.

    Attributes:
        name: registry name, snake_case of the torch.nn module (``conv2d``).
        category: palette group (``"convolution"``).
        doc: one paragraph; the first line is the palette tooltip.
        params: the typed parameters, in form order.
        inputs: names of the input ports, in call order.
        variadic: if true, the last input port takes one or more tensors (``cat``).
        build: torch side: ``build(params, input_specs) -> nn.Module`` (module ops).
        function: torch side: a callable for stateless ops, called as ``function(*tensors, **kwargs(params))``.
        kwargs: maps validated params to the keyword arguments of `function`.
        infer: shape inference, attached by `graphbuilder.ops` (runs the op on meta tensors).
        flops: FLOP counter for `Graph.summary`, attached by `graphbuilder.ops` (torch's flop counter).
        args: extra positional arguments after the tensors, from params (``x[index]`` is
            ``operator.getitem(x, index)``).
        check: ``check(params, input_specs)`` raising `GraphError` with a clearer message than torch's.
        examples: example calls (`Example`) every op test is driven from; an op without them fails a test.
        module: the torch.nn class an imported module of which becomes this op (the importer's table).
        read: ``read(module) -> params`` for such a module (default: its attributes named like the params).
        aten: the ATen overload packets that map to this op when the importer meets them (the allow-list:
            nothing else in a captured program is resolved by name).
        input_hint: what the inputs must look like, used in error messages (``"(N, C, H, W)"``).
        source: where the op was declared, for docs (``"builtin"`` or the user's module).
    """

    name: str
    category: str
    doc: str
    params: tuple[Param, ...] = ()
    inputs: tuple[str, ...] = ("input",)
    variadic: bool = False
    build: Callable[..., Any] | None = None
    function: Callable[..., Any] | None = None
    kwargs: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    args: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None
    check: Callable[[dict[str, Any], Sequence[TensorSpec]], None] | None = None
    examples: tuple[Example, ...] = ()
    module: type | None = None
    read: Callable[[Any], dict[str, Any]] | None = None
    aten: tuple[Any, ...] = ()
    infer: InferFn | None = None
    flops: Callable[[OpDef, dict[str, Any], Sequence[TensorSpec]], int] | None = None
    input_hint: str = ""
    source: str = "builtin"

    def param(self, name: str) -> Param:
        """Return the parameter called `name` or raise `GraphError` listing the valid names."""
        for p in self.params:
            if p.name == name:
                return p
        valid = ", ".join(p.name for p in self.params) or "none"
        raise GraphError(f"op {self.name!r} has no parameter {name!r}; its parameters are: {valid}")

    @property
    def from_user_code(self) -> bool:
        """Whether the op was registered by user code (``@gb.op``), not by GraphBuilder's own library."""
        return not (self.source == "builtin" or self.source.startswith("graphbuilder."))

    def defaults(self) -> dict[str, Any]:
        """Default values of all parameters that have one."""
        return {p.name: p.default for p in self.params if p.default is not None or p.optional}

    def validate_params(self, params: dict[str, Any], where: str = "") -> dict[str, Any]:
        """Fill defaults, check every value, and return canonical params in declaration order."""
        for key in params:
            self.param(key)  # raises on unknown names
        out: dict[str, Any] = {}
        for p in self.params:
            value = params.get(p.name, p.default)
            out[p.name] = p.validate(value, where)
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON description for the editor's palette and forms."""
        return {
            "name": self.name, "category": self.category, "doc": self.doc,
            "params": [p.to_json() for p in self.params], "inputs": list(self.inputs),
            "variadic": self.variadic, "input_hint": self.input_hint, "source": self.source,
            "user_code": self.from_user_code,
        }
