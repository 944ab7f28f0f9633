"""Layers over feature maps in the spec: convolutions, pools and the flatten (spec section 6).

A :class:`Window` is a convolution's or pool's geometry: the input's shape ([C, H, W], or [C, L]
for the 1-D kinds), the output channels, the kernel, the stride and the zero padding, in
PyTorch's conventions (a pool's stride is its kernel). :class:`SpatialReader` reads
``inputs: {shape: [...]}``, these layers and a sample's nested inputs for the spec loader
(:mod:`chainrule.derive.spec`), raising its one-line errors.

Names. The inputs of a spec with ``inputs: {shape: [C, H, W]}`` are ``x_c_i_j`` (channel, row,
column, each from 1: ``x_1_2_3``); ``[C, L]``: ``x_c_i``. A convolution's or pool's units are
named the same way after the layer (``c_1_2_3``); a flatten's units as a dense layer's (``f1``,
``f2``, ...), in PyTorch's row-major order of the maps before it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from chainrule.derive import naming
from chainrule.derive.counts import count as counted
from chainrule.derive.errors import shown

CONV_KINDS = ("conv1d", "conv2d")
POOL_KINDS = ("maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d")
FLATTEN_KIND = "flatten"
SPATIAL_KINDS = CONV_KINDS + POOL_KINDS + (FLATTEN_KIND,)
CONV_KEYS = ("name", "kind", "channels", "kernel", "stride", "padding", "activation", "bias", "weights", "biases", "weight_names", "bias_names", "freeze")
POOL_KEYS = ("name", "kind", "kernel")
FLATTEN_KEYS = ("name", "kind")
MAX_SIDE = 4096
INPUT_MAP_NAME = "x"


@dataclass(frozen=True)
class Window:
    """A convolution's or pool's geometry, in the user's dimensions (2 for ``*2d``, 1 for ``*1d``).

    Attributes:
        kind: ``conv2d``, ``maxpool1d``, ...
        in_shape: the input's [C, H, W] or [C, L].
        channels: the output channels (a pool's are its input's).
        kernel, stride, padding: per spatial dimension.
    """

    kind: str
    in_shape: tuple[int, ...]
    channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]

    @property
    def dims(self) -> int:
        return len(self.kernel)

    @property
    def out_shape(self) -> tuple[int, ...]:
        """[channels, Ho, Wo] (or [channels, Lo]): PyTorch's floor((n + 2p - k)/s) + 1 per side."""
        sides = (
            (n + 2 * p - k) // s + 1 for n, k, s, p in zip(self.in_shape[1:], self.kernel, self.stride, self.padding)
        )
        return (self.channels, *sides)

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        """The kernel's array, PyTorch's layout: [out, in, kh, kw] ([out, in, k] for 1-D)."""
        return (self.channels, self.in_shape[0], *self.kernel)

    @property
    def geometry(self) -> tuple[int, ...]:
        """``(C, H, W, kh, kw, sh, sw, ph, pw)`` of :mod:`chainrule.derive.spatial`; a 1-D
        window is a 2-D one of height 1."""
        if self.dims == 1:
            return (self.in_shape[0], 1, self.in_shape[1], 1, self.kernel[0], 1, self.stride[0], 0, self.padding[0])
        return (*self.in_shape, *self.kernel, *self.stride, *self.padding)


    @property
    def is_conv(self) -> bool:
        return self.kind in CONV_KINDS

    @property
    def places(self) -> int:
        """The kernel's places per channel (kh*kw, or k)."""
        return math.prod(self.kernel)

    @property
    def positions(self) -> int:
        """The output's positions per channel (Ho*Wo, or Lo)."""
        return math.prod(self.out_shape[1:])

    def field(self, unit: int) -> tuple[tuple[int, int], ...]:
        """What output unit ``unit`` (its flat index, row-major over :attr:`out_shape`) reads:
        ``(input unit, kernel column)`` pairs in the kernel's order, the input unit flat over
        :attr:`in_shape` and the column its place in the kernel's row ``c*kh*kw + i*kw + j``
        (a convolution reads every input channel, a pool its own channel, column ``i*kw + j``).
        Places on the zero padding read nothing and are left out."""
        channel, position = divmod(unit, self.positions)
        at = _unravel(position, self.out_shape[1:])
        channels = range(self.in_shape[0]) if self.is_conv else (channel,)
        found = []
        for c in channels:
            for p, place in enumerate(itertools.product(*(range(k) for k in self.kernel))):
                source = [a * s + i - pad for a, s, i, pad in zip(at, self.stride, place, self.padding)]
                if all(0 <= v < n for v, n in zip(source, self.in_shape[1:])):
                    column = (c if self.is_conv else 0) * self.places + p
                    found.append((_ravel((c, *source), self.in_shape), column))
        return tuple(found)

    def readers(self, channel: int, column: int) -> tuple[int, ...]:
        """The output units (flat) of output channel ``channel`` where the kernel's ``column``
        (as in :meth:`field`) multiplies a real input, not the padding: every position of the
        channel where that shared weight is used, row-major."""
        place = _unravel(column % self.places, self.kernel)
        found = []
        for position, at in enumerate(itertools.product(*(range(n) for n in self.out_shape[1:]))):
            source = [a * s + i - pad for a, s, i, pad in zip(at, self.stride, place, self.padding)]
            if all(0 <= v < n for v, n in zip(source, self.in_shape[1:])):
                found.append(channel * self.positions + position)
        return tuple(found)


def _flat(nested: Any) -> list:
    return [v for item in nested for v in _flat(item)] if isinstance(nested, tuple) else [nested]


def _unravel(index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The row-major position of flat ``index`` in ``shape``."""
    out = []
    for n in reversed(shape):
        index, r = divmod(index, n)
        out.append(r)
    return tuple(reversed(out))


def _ravel(position: tuple[int, ...], shape: tuple[int, ...]) -> int:
    index = 0
    for p, n in zip(position, shape):
        index = index * n + p
    return index


def _a(kind: str) -> str:
    """``a conv2d``, ``an avgpool2d``: the kind with its article."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


def map_names(prefix: str, shape: tuple[int, ...]) -> tuple[str, ...]:
    """``prefix_c_i_j`` for every position of ``shape``, row-major, each index from 1."""
    return tuple(f"{prefix}_" + "_".join(str(i + 1) for i in index) for index in itertools.product(*(range(n) for n in shape)))


class SpatialReader:
    """Reads the spec's feature-map parts for a :class:`chainrule.derive.spec._Reader` (its
    ``fail``, ``mapping``, ``integer``, ``name``, ``choice``, ``activation``, ``number``, ``freeze``)."""

    def __init__(self, reader: Any) -> None:
        self.r = reader

    def input_shape(self, value: Any) -> tuple[int, ...] | None:
        """``inputs: {shape: [C, H, W]}`` (or ``[C, L]``), else None (a count or names)."""
        if not isinstance(value, dict):
            return None
        raw = self.r.mapping(value, "inputs", ("shape",), ("shape",))
        items = raw["shape"]
        if not isinstance(items, list) or len(items) not in (2, 3):
            raise self.r.fail("inputs.shape", f"expected [channels, height, width] or [channels, length], got {shown(items)}")
        shape = tuple(self.r.integer(v, f"inputs.shape[{i}]", 1, MAX_SIDE) for i, v in enumerate(items))
        if math.prod(shape) > 100_000:
            raise self.r.fail("inputs.shape", f"expected at most 100,000 inputs, got {math.prod(shape):,}")
        return shape

    def input_names(self, shape: tuple[int, ...]) -> tuple[str, ...]:
        return map_names(INPUT_MAP_NAME, shape)

    def sample_x(self, value: Any, path: str, shape: tuple[int, ...]) -> tuple[float, ...]:
        """A sample's inputs nested as the input shape, or flat in row-major order."""
        size = math.prod(shape)
        if isinstance(value, list) and len(value) == size and not any(isinstance(v, list) for v in value):
            return tuple(self.r.number(v, f"{path}[{i}]") for i, v in enumerate(value))
        out: list[float] = []

        def nested(v: Any, p: str, dims: tuple[int, ...]) -> None:
            if not dims:
                out.append(self.r.number(v, p))
                return
            if not isinstance(v, list) or len(v) != dims[0]:
                got = f"{counted(len(v), 'entry')}" if isinstance(v, list) else shown(v)
                raise self.r.fail(p, f"expected the inputs nested as their shape {list(shape)} (so here a list of {dims[0]}), or a flat list of {size}; got {got}")
            for i, item in enumerate(v):
                nested(item, f"{p}[{i}]", dims[1:])

        nested(value, path, shape)
        return tuple(out)

    def check_order(self, kind: Any, path: str, shape: tuple[int, ...] | None, below: str) -> None:
        """A convolution or pool reads feature maps; a dense or activation layer reads a vector."""
        if not isinstance(kind, str):
            return
        if kind in CONV_KINDS + POOL_KINDS + (FLATTEN_KIND,) and shape is None:
            why = "the inputs are a list of units (give inputs: {shape: [C, H, W]})" if below == "the inputs" else f"{below} gives a vector, not feature maps (a flatten or dense layer comes before it)"
            raise self.r.fail(f"{path}.kind", f"{_a(kind)} layer reads feature maps, but {why}")
        if kind in ("dense", "activation") and shape is not None:
            raise self.r.fail(path, f"{_a(kind)} layer reads a vector, but {below} gives feature maps of shape {list(shape)}; put a flatten layer before it")
        if kind in CONV_KINDS + POOL_KINDS:
            wanted = 3 if kind.endswith("2d") else 2
            if shape is not None and len(shape) != wanted:
                what = "[channels, height, width]" if wanted == 3 else "[channels, length]"
                raise self.r.fail(f"{path}.kind", f"{_a(kind)} layer reads maps of shape {what}, but {below} gives {list(shape)}")

    def layer(self, value: Any, path: str, shape: tuple[int, ...], below: str) -> Any:
        """A convolution, pool or flatten after maps of ``shape``: the reader's ``LayerSpec``."""
        kind = value["kind"]
        if kind == FLATTEN_KIND:
            raw = self.r.mapping(value, path, FLATTEN_KEYS, ("name",))
            units = tuple(naming.unit_name(self.r.name(raw["name"], f"{path}.name"), n) for n in range(1, math.prod(shape) + 1))
            return self.r.layer_spec(name=raw["name"], units=units, kind=kind)
        conv = kind in CONV_KINDS
        raw = self.r.mapping(value, path, CONV_KEYS if conv else POOL_KEYS, ("name", "channels", "kernel", "activation") if conv else ("name", "kernel"))
        name, dims = self.r.name(raw["name"], f"{path}.name"), len(shape) - 1
        kernel = self.pair(raw["kernel"], f"{path}.kernel", dims, 1, "kernel")
        stride = self.pair(raw.get("stride", 1), f"{path}.stride", dims, 1, "stride") if conv else kernel
        padding = self.pair(raw.get("padding", 0), f"{path}.padding", dims, 0, "padding") if conv else (0,) * dims
        channels = self.r.integer(raw["channels"], f"{path}.channels", 1, MAX_SIDE) if conv else shape[0]
        window = Window(kind, shape, channels, kernel, stride, padding)
        self.check_fits(window, path, below)
        units = map_names(name, window.out_shape)
        if not conv:
            return self.r.layer_spec(name=name, units=units, kind=kind, window=window)
        bias = self.r.choice(raw.get("bias", "per_channel"), f"{path}.bias", ("per_channel", "none"), "bias mode")
        activation = self.r.activation(raw["activation"], f"{path}.activation")
        if activation.name == "softmax":
            raise self.r.fail(f"{path}.activation", "softmax is over a vector of units; a convolution takes an elementwise activation (softmax on a dense layer after a flatten)")
        weights = None if raw.get("weights") is None else self.array(raw["weights"], f"{path}.weights", window.kernel_shape, "out, in, " + ("kh, kw" if dims == 2 else "k"))
        biases = None
        if raw.get("biases") is not None:
            if bias == "none":
                raise self.r.fail(f"{path}.biases", "given, but the layer has bias: none")
            biases = self.array(raw["biases"], f"{path}.biases", (channels,), "out")
        names = self.names(raw, path, window, bias)
        return self.r.layer_spec(name=name, units=units, kind=kind, window=window, activation=activation, bias=bias, weights=weights, biases=biases,
                                 freeze=self.r.freeze(raw.get("freeze", []), f"{path}.freeze"), names=names)

    def names(self, raw: dict, path: str, window: Window, bias: str) -> tuple[Any, Any]:
        """``weight_names`` nested as the kernel [out, in, kh, kw] (held as a row per output
        channel, in the kernel's order) and ``bias_names`` one per channel, each None if not given."""
        axes = "out, in, " + ("kh, kw" if window.dims == 2 else "k")
        weight_names = None
        if raw.get("weight_names") is not None:
            nested = self.array(raw["weight_names"], f"{path}.weight_names", window.kernel_shape, axes, self.r.name)
            weight_names = tuple(tuple(_flat(row)) for row in nested)
        bias_names = None
        if raw.get("bias_names") is not None:
            if bias == "none":
                raise self.r.fail(f"{path}.bias_names", "given, but the layer has bias: none")
            bias_names = self.array(raw["bias_names"], f"{path}.bias_names", (window.channels,), "out", self.r.name)
        return weight_names, bias_names

    def pair(self, value: Any, path: str, dims: int, low: int, what: str) -> tuple[int, ...]:
        """An integer for every spatial dimension, or a list of ``dims`` of them."""
        if isinstance(value, list):
            if len(value) != dims:
                raise self.r.fail(path, f"expected an integer or a list of {dims} ({'[kh, kw]' if dims == 2 else '[k]'}), got {shown(value)}")
            return tuple(self.r.integer(v, f"{path}[{i}]", low, MAX_SIDE) for i, v in enumerate(value))
        return (self.r.integer(value, path, low, MAX_SIDE),) * dims

    def check_fits(self, window: Window, path: str, below: str) -> None:
        """The kernel fits the padded input; a pool's windows tile it."""
        sides = window.in_shape[1:]
        for d, (n, k, p) in enumerate(zip(sides, window.kernel, window.padding)):
            if k > n + 2 * p:
                padded = f" padded by {p} on each side ({n + 2 * p})" if p else ""
                raise self.r.fail(f"{path}.kernel", f"a kernel of {list(window.kernel)} is larger than its input ({below}: {list(window.in_shape)}{padded})")
        if window.kind not in CONV_KINDS and any(n % k for n, k in zip(sides, window.kernel)):
            raise self.r.fail(f"{path}.kernel", f"a pool's windows of {list(window.kernel)} do not tile its input ({below}: {list(window.in_shape)}); "
                              "expected a kernel that divides each side")

    def array(self, value: Any, path: str, shape: tuple[int, ...], axes: str, cell: Any = None) -> Any:
        """A nested list of numbers (or of what ``cell(value, path)`` reads: names) of ``shape``
        (a kernel [out, in, kh, kw], biases [out]), as nested tuples."""
        def read(v: Any, p: str, dims: tuple[int, ...]) -> Any:
            if not dims:
                return (cell or self.r.number)(v, p)
            if not isinstance(v, list) or len(v) != dims[0]:
                got = counted(len(v), "entry") if isinstance(v, list) else shown(v)
                raise self.r.fail(p, f"expected an array of shape {list(shape)} [{axes}], so here a list of {dims[0]}; got {got}")
            return tuple(read(item, f"{p}[{i}]", dims[1:]) for i, item in enumerate(v))

        return read(value, path, shape)

