"""Convolution and pooling in NumPy, on a layer's values held flat, one sample per row.

A layer over feature maps holds its values as [batch, C*H*W] rows (PyTorch's row-major flatten
of [C, H, W]; 1-D layers are [C, L], taken here as H = 1), so that the elementwise parts of the
layer program (the activation, its derivative) and a flatten need no reshaping. Each function
below takes the window's geometry as nine integers ``(C, H, W, kh, kw, sh, sw, ph, pw)``: the
input's channels, height and width, the kernel, the stride and the zero padding.

The derivation's evaluator (:mod:`chainrule.derive.evaluate`) calls these functions, and the
emitted trainer carries their source (:mod:`chainrule.codegen.trainer.context`): one
computation. Every function is self-contained (NumPy only) for that reason.

- forward, PyTorch's ``conv2d`` (a cross-correlation): ``net[o, y, x] = b[o] + sum_{c,i,j}
  K[o, c, i, j] * in[c, y*sh + i - ph, x*sw + j - pw]`` (zeros outside the input);
- dE/dK: the correlation of the input with the output's deltas, summed over the batch;
- dE/d(input): the full correlation of the deltas (spread by the stride) with the flipped
  kernel, input and output channels exchanged (the transposed convolution);
- max-pool: each window's largest input; its delta goes to that input alone, ties broken as
  PyTorch breaks them (the first largest in row-major order within the window);
- average-pool: each window's mean; its delta is spread evenly over the window.
"""

from __future__ import annotations

import numpy as np

Geometry = tuple[int, int, int, int, int, int, int, int, int]


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Positions of a window of ``kernel`` with ``stride`` over ``size`` padded by ``padding``
    on each side (PyTorch's floor: rows the last window does not reach are unused)."""
    return (size + 2 * padding - kernel) // stride + 1


def columns(x, geometry):
    """[batch, C*kh*kw, Ho*Wo]: every window of ``x`` ([batch, C*H*W], zero-padded) as a column,
    its entries in the kernel's order (channel, row, column), so that one matrix product with
    the kernel [O, C*kh*kw] gives the correlation (im2col, built by one strided copy per place
    in the kernel)."""
    C, H, W, kh, kw, sh, sw, ph, pw = geometry
    maps = x.reshape(x.shape[0], C, H, W)
    if ph or pw:
        maps = np.pad(maps, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    out = np.empty((x.shape[0], C, kh, kw, Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = slice(i, i + sh * (Ho - 1) + 1, sh), slice(j, j + sw * (Wo - 1) + 1, sw)
            out[:, :, i, j] = maps[:, :, rows, cols]
    return out.reshape(x.shape[0], C * kh * kw, Ho * Wo)


def correlate(x, K, b, geometry):
    """net [batch, O*Ho*Wo] = the cross-correlation of ``x`` [batch, C*H*W] with the kernel
    ``K`` [O, C, kh, kw] (or [O, C, k]), plus ``b`` [O] per output channel (None: no bias)."""
    net = np.matmul(K.reshape(K.shape[0], -1), columns(x, geometry))  # [batch, O, Ho*Wo]
    if b is not None:
        net += b[:, None]
    return net.reshape(x.shape[0], -1)


def correlate_kernel_gradient(delta, x, geometry):
    """dE/dK [O, C*kh*kw] summed over the batch: the correlation of the input ``x`` with the
    deltas ``delta`` [batch, O*Ho*Wo] (each kernel weight's sum over every position it is used)."""
    windows = columns(x, geometry)
    deltas = delta.reshape(x.shape[0], -1, windows.shape[2])
    return np.matmul(deltas, windows.transpose(0, 2, 1)).sum(axis=0)


def correlate_backprop(K, delta, geometry):
    """dE/d(input) [batch, C*H*W]: the deltas [batch, O*Ho*Wo] with zeros between them where the
    stride skips (and below and right of them where the last window does not reach), padded by
    kernel - 1, correlated with the kernel flipped in both directions, its input and output
    channels exchanged; the padding's rows and columns cut off."""
    C, H, W, kh, kw, sh, sw, ph, pw = geometry
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    batch, kernel = delta.shape[0], K.reshape(K.shape[0], C, kh, kw)
    O, Hp, Wp = kernel.shape[0], H + 2 * ph, W + 2 * pw
    spread = np.zeros((batch, O, Hp + kh - 1, Wp + kw - 1), dtype=delta.dtype)
    rows = slice(kh - 1, kh + (Ho - 1) * sh, sh)
    cols = slice(kw - 1, kw + (Wo - 1) * sw, sw)
    spread[:, :, rows, cols] = delta.reshape(batch, O, Ho, Wo)
    flipped = kernel[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(C, -1)  # [C, O*kh*kw]
    full = np.matmul(flipped, columns(spread, (O, Hp + kh - 1, Wp + kw - 1, kh, kw, 1, 1, 0, 0)))
    inside = full.reshape(batch, C, Hp, Wp)[:, :, ph : ph + H, pw : pw + W]
    return np.ascontiguousarray(inside).reshape(batch, -1)


def _tiles(x, geometry):
    """[batch, C, Ho, kh, Wo, kw]: the windows of a pool, which tile the input (stride =
    kernel, no padding): a reshape, no copy."""
    C, H, W, kh, kw = geometry[:5]
    return x.reshape(x.shape[0], C, H // kh, kh, W // kw, kw)


def maxpool(x, geometry):
    """[batch, C*Ho*Wo]: the largest input of each window of ``x`` [batch, C*H*W]."""
    tiles, kh, kw = _tiles(x, geometry), geometry[3], geometry[4]
    largest = tiles[:, :, :, 0, :, 0].copy()
    for i in range(kh):  # one elementwise maximum per place in the window: few, large operations
        for j in range(kw):
            np.maximum(largest, tiles[:, :, :, i, :, j], out=largest)
    return largest.reshape(x.shape[0], -1)


def maxpool_backprop(x, delta, geometry):
    """dE/d(input) [batch, C*H*W]: each window's delta sent to its largest input, the first in
    row-major order where several are largest (as PyTorch), zero to the others."""
    tiles, kh, kw = _tiles(x, geometry), geometry[3], geometry[4]
    largest = tiles[:, :, :, 0, :, 0].copy()
    first = np.zeros(largest.shape, dtype=np.intp)  # the place of the first largest so far
    for k in range(1, kh * kw):
        place = tiles[:, :, :, k // kw, :, k % kw]
        above = place > largest  # strictly: a tie keeps the first
        first[above] = k
        np.maximum(largest, place, out=largest)
    routed = np.zeros(tiles.shape, dtype=delta.dtype)
    deltas = delta.reshape(largest.shape)
    for k in range(kh * kw):
        routed[:, :, :, k // kw, :, k % kw] = np.where(first == k, deltas, 0.0)
    return routed.reshape(x.shape[0], -1)


def avgpool(x, geometry):
    """[batch, C*Ho*Wo]: the mean of each window of ``x`` [batch, C*H*W]."""
    tiles, kh, kw = _tiles(x, geometry), geometry[3], geometry[4]
    total = tiles[:, :, :, 0, :, 0].copy()
    for k in range(1, kh * kw):
        total += tiles[:, :, :, k // kw, :, k % kw]
    return (total / (kh * kw)).reshape(x.shape[0], -1)


def avgpool_backprop(delta, geometry):
    """dE/d(input) [batch, C*H*W]: each window's delta divided evenly among its kh*kw inputs
    (the windows tile the input)."""
    C, H, W, kh, kw = geometry[:5]
    batch = delta.shape[0]
    share = delta.reshape(batch, C, H // kh, 1, W // kw, 1) / (kh * kw)
    return np.broadcast_to(share, (batch, C, H // kh, kh, W // kw, kw)).reshape(batch, -1)
