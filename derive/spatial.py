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


def windows(x, geometry):
    """[batch, C, Ho, Wo, kh, kw]: every window of ``x`` ([batch, C*H*W]), zero-padded, a view."""
    C, H, W, kh, kw, sh, sw, ph, pw = geometry
    maps = x.reshape(x.shape[0], C, H, W)
    if ph or pw:
        maps = np.pad(maps, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return np.lib.stride_tricks.sliding_window_view(maps, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def correlate(x, K, b, geometry):
    """net [batch, O*Ho*Wo] = the cross-correlation of ``x`` [batch, C*H*W] with the kernel
    ``K`` [O, C, kh, kw] (or [O, C, k]), plus ``b`` [O] per output channel (None: no bias)."""
    C, H, W, kh, kw = geometry[:5]
    kernel = K.reshape(K.shape[0], C, kh, kw)
    # [batch, Ho, Wo, O]: each window times the kernel, summed over channels and the window
    net = np.tensordot(windows(x, geometry), kernel, axes=((1, 4, 5), (1, 2, 3)))
    if b is not None:
        net = net + b
    return np.ascontiguousarray(net.transpose(0, 3, 1, 2)).reshape(x.shape[0], -1)


def correlate_kernel_gradient(delta, x, geometry):
    """dE/dK [O, C, kh, kw] summed over the batch: the correlation of the input ``x`` with the
    deltas ``delta`` [batch, O*Ho*Wo] (each kernel weight's sum over every position it is used)."""
    view = windows(x, geometry)
    deltas = delta.reshape(x.shape[0], -1, view.shape[2], view.shape[3])
    return np.tensordot(deltas, view, axes=((0, 2, 3), (0, 2, 3)))


def correlate_backprop(K, delta, geometry):
    """dE/d(input) [batch, C*H*W]: the deltas [batch, O*Ho*Wo] with zeros between them where the
    stride skips (and below and right of them where the last window does not reach), padded by
    kernel - 1, correlated with the kernel flipped in both directions, its input and output
    channels exchanged; the padding's rows and columns cut off."""
    C, H, W, kh, kw, sh, sw, ph, pw = geometry
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    batch, kernel = delta.shape[0], K.reshape(K.shape[0], C, kh, kw)
    Hp, Wp = H + 2 * ph, W + 2 * pw
    spread = np.zeros((batch, kernel.shape[0], Hp + kh - 1, Wp + kw - 1))
    rows = slice(kh - 1, kh + (Ho - 1) * sh, sh)
    columns = slice(kw - 1, kw + (Wo - 1) * sw, sw)
    spread[:, :, rows, columns] = delta.reshape(batch, -1, Ho, Wo)
    flipped = kernel[:, :, ::-1, ::-1]
    view = np.lib.stride_tricks.sliding_window_view(spread, (kh, kw), axis=(2, 3))
    full = np.tensordot(view, flipped, axes=((1, 4, 5), (0, 2, 3)))  # [batch, Hp, Wp, C]
    inside = full.transpose(0, 3, 1, 2)[:, :, ph : ph + H, pw : pw + W]
    return np.ascontiguousarray(inside).reshape(batch, -1)


def maxpool(x, geometry):
    """[batch, C*Ho*Wo]: the largest input of each window of ``x`` [batch, C*H*W]."""
    view = windows(x, geometry)
    return view.max(axis=(4, 5)).reshape(x.shape[0], -1)


def maxpool_backprop(x, delta, geometry):
    """dE/d(input) [batch, C*H*W]: each window's delta sent to its largest input, the first in
    row-major order where several are largest (as PyTorch), zero to the others. The windows
    tile the input (stride = kernel, no padding)."""
    C, H, W, kh, kw = geometry[:5]
    view = windows(x, geometry)
    batch, _, Ho, Wo = view.shape[:4]
    first = view.reshape(batch, C, Ho, Wo, kh * kw).argmax(axis=4)
    routed = np.zeros((batch, C, Ho, Wo, kh * kw))
    np.put_along_axis(routed, first[..., None], delta.reshape(batch, C, Ho, Wo, 1), axis=4)
    tiles = routed.reshape(batch, C, Ho, Wo, kh, kw).transpose(0, 1, 2, 4, 3, 5)
    return tiles.reshape(batch, -1)


def avgpool(x, geometry):
    """[batch, C*Ho*Wo]: the mean of each window of ``x`` [batch, C*H*W]."""
    view = windows(x, geometry)
    return view.mean(axis=(4, 5)).reshape(x.shape[0], -1)


def avgpool_backprop(delta, geometry):
    """dE/d(input) [batch, C*H*W]: each window's delta divided evenly among its kh*kw inputs
    (the windows tile the input)."""
    C, H, W, kh, kw = geometry[:5]
    batch = delta.shape[0]
    share = delta.reshape(batch, C, H // kh, 1, W // kw, 1) / (kh * kw)
    return np.broadcast_to(share, (batch, C, H // kh, kh, W // kw, kw)).reshape(batch, -1)
