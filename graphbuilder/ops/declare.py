"""How ops are declared: one call per op gives name, category, doc, typed params, ports and the torch side.

Shape inference is generic: an op is run on `meta` tensors (no memory, no compute), so no op has a
hand-written shape rule. FLOPs come from `torch.utils.flop_counter` the same way. Torch errors are caught
here and turned into `GraphError`s that say what the inputs must look like.

Op modules must be made of torch classes (or fx `GraphModule`s), so compiled models need no GraphBuilder.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from graphbuilder.ir import registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.schema import Example, Inference, OpDef, Param, TensorSpec

MAX_DIM = 2**31 - 1  # any size beyond this overflows torch's index math; refuse it with a clear message

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "int64": torch.int64, "int32": torch.int32, "bool": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in TORCH_DTYPES.items()}

Specs = Sequence[TensorSpec]
Builder = Callable[[dict[str, Any], Specs], nn.Module]


# -- parameter shorthands ------------------------------------------------------------------------------------
def size(doc: str, default: int | None = None) -> Param:
    """A positive size (channels, features, heads)."""
    return Param("int", default, min=1, max=MAX_DIM, doc=doc)


def integer(doc: str, default: int | None = None, lo: int | None = None, hi: int | None = MAX_DIM,
            optional: bool = False) -> Param:
    """An integer with optional bounds; `optional` allows None (unset)."""
    return Param("int", default, min=lo, max=hi, optional=optional, doc=doc)


def number(doc: str, default: float | None = None, lo: float | None = None, hi: float | None = None,
           optional: bool = False) -> Param:
    """A finite float with optional bounds; `optional` allows None (unset)."""
    return Param("float", default, min=lo, max=hi, optional=optional, doc=doc)


def flag(doc: str, default: bool) -> Param:
    """A boolean."""
    return Param("bool", default, doc=doc)


def choice(doc: str, choices: Sequence[Any], default: Any) -> Param:
    """One of a fixed set of values (a dropdown in the editor)."""
    return Param("enum", default, choices=tuple(choices), doc=doc)


def spatial(doc: str, default: Any = None, lo: int = 0, n: int | None = None, optional: bool = False) -> Param:
    """An int or a tuple of ints, one per spatial dim (``kernel_size=3`` or ``(3, 5)``)."""
    return Param("int_or_ints", default, min=lo, max=MAX_DIM, length=n, optional=optional, doc=doc)


def dims(doc: str, default: Any = None) -> Param:
    """A tuple of (possibly negative) dimension indices or sizes."""
    return Param("ints", default, min=-1 if default is None else None, doc=doc)


def named(**params: Param) -> tuple[Param, ...]:
    """Give each `Param` its keyword name, keeping declaration order."""
    return tuple(dataclasses.replace(p, name=k) for k, p in params.items())


# -- input checks used by many ops ---------------------------------------------------------------------------
def channels(specs: Specs) -> int:
    """Channel count of the first input, (N, C, ...) layout."""
    return specs[0].shape[1]


def features(specs: Specs) -> int:
    """Feature count of the first input: its last dim."""
    return specs[0].shape[-1]


def need_rank(*ranks: int, hint: str) -> Callable[[dict[str, Any], Specs], None]:
    """A check that input 0 has one of `ranks` dims; the error shows `hint`, the expected layout."""
    def check(params: dict[str, Any], specs: Specs) -> None:
        if specs and len(specs[0].shape) not in ranks:
            raise GraphError(f"expects input of shape {hint}, got {specs[0]}; reshape or flatten the input "
                             f"to {len(hint.split(','))} dims")
    return check


def dims_in_range(*names: str) -> Callable[[dict[str, Any], Specs], None]:
    """A check that the dim-valued params `names` index a dim of input 0 (negative counts from the end).

    Needed because some meta kernels (softmax) do not check dims, while the real kernels do.
    """
    def check(params: dict[str, Any], specs: Specs) -> None:
        rank = len(specs[0].shape)
        for name in names:
            values = params[name] if isinstance(params[name], tuple) else (params[name],)
            for d in values:
                if not -rank <= d < rank:
                    raise GraphError(f"{name}={params[name]} is out of range for input {specs[0]} with {rank} dims; "
                                     f"use a value in [{-rank}, {rank - 1}]")
    return check


def broadcastable(params: dict[str, Any], specs: Specs) -> None:
    """Elementwise ops: say which dim of which input does not fit, and what would."""
    a, b = specs[0].shape, specs[1].shape
    for k in range(1, min(len(a), len(b)) + 1):
        da, db = a[-k], b[-k]
        if da != db and 1 not in (da, db):
            dim = len(a) - k
            raise GraphError(f"shapes {specs[0]} and {specs[1]} do not match at dim {dim} ({da} vs {db}); make "
                             f"the second input have {da} there (e.g. out_channels={da} on the node that "
                             f"produces it) or the first have {db}")


# -- the generic torch side ----------------------------------------------------------------------------------
def meta_tensors(specs: Specs) -> list[torch.Tensor]:
    """Empty `meta` tensors with the given specs (no memory is allocated)."""
    return [torch.empty(s.shape, dtype=TORCH_DTYPES[s.dtype], device="meta") for s in specs]


def call(opdef: OpDef, module: nn.Module | None, tensors: Sequence[Any], params: dict[str, Any]) -> Any:
    """Apply an op to tensors the way compiled code does (module call or function call)."""
    kwargs = opdef.kwargs(params) if opdef.kwargs else {}
    args: list[Any] = [list(tensors)] if opdef.variadic else list(tensors)
    if opdef.args is not None:
        args += opdef.args(params)
    if module is not None:
        return module(*args, **kwargs)
    assert opdef.function is not None
    return opdef.function(*args, **kwargs)


def _run_meta(opdef: OpDef, params: dict[str, Any], specs: Specs, flop_mode: FlopCounterMode | None = None
              ) -> tuple[Any, nn.Module | None]:
    if opdef.check is not None:
        opdef.check(params, specs)
    try:
        tensors = meta_tensors(specs)
        module = None
        if opdef.build is not None:
            with torch.device("meta"):
                module = opdef.build(params, specs)
            module.eval()  # same shapes as training, and far cheaper on meta (e.g. batch norm)
        if flop_mode is not None:
            with flop_mode:
                out = call(opdef, module, tensors, params)
        else:
            out = call(opdef, module, tensors, params)
    except GraphError:
        raise
    except Exception as e:  # torch's own message, cleaned, plus what the op expects
        raise GraphError(_explain(e, opdef)) from None
    return out, module


class _InferenceCache:
    """Memo of meta inference by (op, params, input specs): real networks repeat identical layers at
    identical shapes (ResNet stages, Transformer layers), and the editor re-infers on every keystroke."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._entries: OrderedDict[Any, tuple[OpDef, Inference]] = OrderedDict()

    def key(self, opdef: OpDef, params: dict[str, Any], specs: Specs) -> Any:
        key = (id(opdef), tuple(params.items()), tuple(specs))
        try:
            hash(key)
        except TypeError:  # list/dict-valued params (json kind): not cached
            return None
        return key

    def get(self, key: Any) -> Inference | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        self._entries.move_to_end(key)
        return hit[1]

    def put(self, key: Any, opdef: OpDef, result: Inference) -> None:
        self._entries[key] = (opdef, result)  # holding opdef keeps its id() from being reused
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)


_CACHE = _InferenceCache()


def clear_inference_cache() -> None:
    """Forget memoised shape inferences (benchmarks use this to measure cold inference)."""
    _CACHE._entries.clear()


def meta_infer(opdef: OpDef, params: dict[str, Any], specs: Specs) -> Inference:
    """Shape inference for any op: run it on meta tensors and read the outputs' shapes and dtypes.

    Results are memoised by (op, params, input specs); errors are not cached.
    """
    key = _CACHE.key(opdef, params, specs)
    if key is not None and (hit := _CACHE.get(key)) is not None:
        return hit
    result = _meta_infer(opdef, params, specs)
    if key is not None:
        _CACHE.put(key, opdef, result)
    return result


def _meta_infer(opdef: OpDef, params: dict[str, Any], specs: Specs) -> Inference:
    out, module = _run_meta(opdef, params, specs)
    num_params = sum(p.numel() for p in module.parameters()) if module is not None else 0
    state = tuple((k, tuple(v.shape)) for k, v in module.state_dict().items()) if module is not None else ()
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    while outs and outs[-1] is None:  # e.g. attention weights when need_weights=False
        outs.pop()
    result = []
    for value in outs:
        if not isinstance(value, torch.Tensor):
            raise GraphError(f"op {opdef.name!r} returned {type(value).__name__}, not a tensor")
        result.append(TensorSpec(tuple(int(d) for d in value.shape), DTYPE_NAMES.get(value.dtype, str(value.dtype))))
    return Inference(tuple(result), int(num_params), packed=isinstance(out, (tuple, list)), weight_shapes=state)


def meta_flops(opdef: OpDef, params: dict[str, Any], specs: Specs) -> int:
    """FLOPs of one call, counted by torch's flop counter on meta tensors (a multiply-add counts as 2)."""
    mode = FlopCounterMode(display=False)
    _run_meta(opdef, params, specs, flop_mode=mode)
    return int(mode.get_total_flops())


def _explain(error: Exception, opdef: OpDef) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r"\s+", " ", text)[:400]
    hint = f"; it expects {opdef.input_hint}" if opdef.input_hint else ""
    return f"{text}{hint}"


# -- declaring ops ---------------------------------------------------------------------------------------------
def example(*inputs: tuple[int, ...] | TensorSpec, ref: Callable[..., Any] | None = None, low: float | None = None,
            high: float | None = None, atol: float = 0.0, **params: Any) -> Example:
    """One example call of an op: input shapes (float32) or `TensorSpec`s, then the node's params.

        example((2, 4, 9, 9), out_channels=8, kernel_size=3, ref=lambda x, weight, bias: F.conv2d(x, weight, bias))

    `ref` gets the input tensors and the node's weights by state_dict key (dots as underscores).
    """
    specs = tuple(s if isinstance(s, TensorSpec) else TensorSpec(tuple(s)) for s in inputs)
    return Example(specs, params, ref, low, high, atol)


def declare(name: str, category: str, doc: str, *, params: tuple[Param, ...] = (), inputs: tuple[str, ...] = ("input",),
            build: Builder | None = None, function: Callable[..., Any] | None = None,
            kwargs: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
            args: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None, variadic: bool = False,
            check: Callable[[dict[str, Any], Specs], None] | None = None,
            flops: Callable[[OpDef, dict[str, Any], Specs], int] | None = None, examples: Sequence[Example] = (),
            module: type[nn.Module] | None = None, read: Callable[[nn.Module], dict[str, Any]] | None = None,
            aten: Sequence[Any] = (), hint: str = "", infer: Any = None, source: str = "builtin",
            replace: bool = False) -> OpDef:
    """Register one op: everything about it in one record (PyTorch's OpInfo habit).

    Give `build` (returns an nn.Module) or `function` (a torch function called as
    ``function(*tensors, *args(params), **kwargs(params))``). `check` gives clearer errors than torch's,
    `flops` replaces the flop counter, `examples` (see `example`) drive every op test, `module`/`read` and
    `aten` tell the importer which torch modules and ATen calls become this op. An unknown keyword raises.
    """
    opdef = OpDef(name=name, category=category, doc=doc, params=params, inputs=inputs, variadic=variadic,
                  build=build, function=function, kwargs=kwargs, args=args, check=check, examples=tuple(examples),
                  module=module, read=read, aten=tuple(aten), infer=infer or meta_infer,
                  flops=flops or (meta_flops if (build or function) else None), input_hint=hint, source=source)
    return registry.register(opdef, replace=replace)


def module_op(name: str, category: str, doc: str, cls: type[nn.Module], params: tuple[Param, ...] = (), *,
              derive: dict[str, Callable[[Specs], Any]] | None = None,
              rename: dict[str, str] | None = None, ctor_exclude: tuple[str, ...] = (), **kw: Any) -> OpDef:
    """Declare an op that is a torch.nn module class called with the params as keyword arguments.

    `derive` fills constructor arguments from input shapes (``in_channels`` from dim 1), so users never type
    sizes that follow from their inputs. `rename` maps param names to constructor names where they differ;
    `ctor_exclude` names params that go to the call (through `kwargs`), not the constructor. The importer
    maps instances of `cls` to this op, reading the params back from their attributes (`read_attributes`)
    unless `read=` says otherwise.
    """
    derive = derive or {}
    rename = rename or {}

    def build(p: dict[str, Any], specs: Specs) -> nn.Module:
        args = {rename.get(k, k): v for k, v in p.items() if k not in ctor_exclude}
        args.update({k: f(specs) for k, f in derive.items()})
        return cls(**args)

    kw.setdefault("module", cls)
    kw.setdefault("read", read_attributes(params, rename))
    return declare(name, category, doc, params=params, build=build, **kw)


def function_op(name: str, category: str, doc: str, function: Callable[..., Any], params: tuple[Param, ...] = (),
                **kw: Any) -> OpDef:
    """Declare a stateless op that is a torch function called with the params as keyword arguments."""
    kw.setdefault("kwargs", dict)
    return declare(name, category, doc, params=params, function=function, **kw)


def read_attributes(params: tuple[Param, ...], rename: dict[str, str] | None = None
                    ) -> Callable[[nn.Module], dict[str, Any]]:
    """The importer's default `read`: each param from the module attribute of the same (or renamed) name.

    A tensor-or-None attribute read for a bool param (``bias``) gives whether it is set; a tuple for an
    int-or-ints param collapses to one int when its entries are equal, as a person writes it.
    """
    rename = rename or {}

    def read(m: nn.Module) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in params:
            attr = rename.get(p.name, p.name)
            if not hasattr(m, attr):
                raise GraphError(f"{type(m).__name__} keeps no attribute {attr!r} for param {p.name!r}; store the "
                                 f"constructor argument as self.{attr}")
            value = getattr(m, attr)
            if p.kind == "bool" and (value is None or isinstance(value, torch.Tensor)):
                value = value is not None
            elif isinstance(value, (list, tuple)) and p.kind.endswith("_or_ints") and len(set(value)) == 1:
                value = value[0]
            out[p.name] = tuple(value) if isinstance(value, list) else value
        return out
    return read


# -- custom ops: @gb.op ----------------------------------------------------------------------------------------
_DERIVED_NAMES: dict[str, Callable[[Specs], Any]] = {
    "in_channels": channels, "num_features": channels, "num_channels": channels,
    "in_features": features, "embed_dim": features, "in_dim": features,
}


def op(name: str | None = None, *, category: str = "custom", params: dict[str, Param] | None = None,
       inputs: tuple[str, ...] = ("input",), from_inputs: dict[str, Callable[[Specs], Any]] | None = None,
       doc: str | None = None, hint: str = "", replace: bool = False) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Register a user's `nn.Module` class as an op, usable as ``g.add("name", x, ...)``.

    The parameter schema is `params`, or is read from the ``__init__`` signature: annotations ``int``,
    ``float``, ``bool``, ``str``, ``tuple[int, ...]`` and ``Literal[...]`` (a dropdown), with the defaults.
    Constructor arguments named ``in_channels``, ``num_features``, ``in_features``, ``embed_dim`` (and any in
    `from_inputs`) are filled from input shapes and never asked of the user::

        @gb.op("scaled_relu")
        class ScaledReLU(nn.Module):
            def __init__(self, scale: float = 1.0): ...
    """
    def register_class(cls: type[nn.Module]) -> type[nn.Module]:
        op_name = name or snake_case(cls.__name__)
        derived = {k: v for k, v in _DERIVED_NAMES.items() if k in inspect.signature(cls).parameters}
        derived.update(from_inputs or {})
        schema = params if params is not None else _params_from_signature(cls, set(derived))
        module_op(op_name, category, doc or inspect.getdoc(cls) or f"User op {cls.__qualname__}.", cls,
                  named(**schema), derive=derived, inputs=inputs, hint=hint,
                  source=f"{cls.__module__}.{cls.__qualname__}", replace=replace)
        return cls
    return register_class


# Words of this field written in mixed case that read as one word in snake_case (``ScaledReLU`` -> scaled_relu).
_WHOLE_WORDS = ("PReLU", "ReLU", "GELU", "SiLU", "GloRe", "ResNeXt", "ResNet", "ConvNeXt", "MobileNet",
                "EfficientNet", "RegNet", "DenseNet")


def snake_case(name: str) -> str:
    """The op name for a class name: words split at case changes, acronyms and the field's mixed-case words
    kept whole (``SEBlock`` -> ``se_block``, ``MLP`` -> ``mlp``, ``ScaledReLU`` -> ``scaled_relu``,
    ``Conv2dBN`` -> ``conv2d_bn``, ``ResNetStem`` -> ``resnet_stem``)."""
    for word in _WHOLE_WORDS:
        name = name.replace(word, word.capitalize())
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _params_from_signature(cls: type[nn.Module], derived: set[str]) -> dict[str, Param]:
    hints = typing.get_type_hints(cls.__init__)
    out: dict[str, Param] = {}
    for pname, p in inspect.signature(cls.__init__).parameters.items():
        if pname == "self" or pname in derived or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        out[pname] = _param_for(hints.get(pname, type(default) if default is not None else None), default, cls, pname)
    return out


def _param_for(annotation: Any, default: Any, cls: type, pname: str) -> Param:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return Param("enum", default, choices=typing.get_args(annotation))
    if origin is tuple:
        inner = typing.get_args(annotation)[0] if typing.get_args(annotation) else int
        return Param("ints" if inner is int else "floats", tuple(default) if default is not None else None)
    kinds = {int: "int", float: "float", bool: "bool", str: "str"}
    if annotation not in kinds:
        raise GraphError(f"@gb.op on {cls.__qualname__}: cannot make a form field for argument {pname!r} "
                         f"({annotation!r}); annotate it as int, float, bool, str, tuple[int, ...] or Literal[...], "
                         "or pass params={...}")
    return Param(kinds[annotation], default)
