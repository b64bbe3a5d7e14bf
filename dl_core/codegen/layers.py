"""Runnable, course-style code for what the layers lab shows (conv, multi-channel, pooling,
activations, Flatten/Linear, layers on images). Each function returns a complete script.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from dl_core.arithmetic import format_number


def _literal(grid: torch.Tensor | Sequence[Sequence[float]], indent: int) -> str:
    """A 2-D grid as the notes write it: one row per line, numbers aligned."""
    rows = grid.tolist() if isinstance(grid, torch.Tensor) else [list(r) for r in grid]
    cells = [[format_number(float(v), 6) for v in r] for r in rows]
    width = max(len(c) for r in cells for c in r)
    lines = ["[" + ", ".join(c.rjust(width) for c in r) + "]" for r in cells]
    pad = " " * (indent + 1)
    return "[" + f",\n{pad}".join(lines) + "]"


def _is_integral(*grids) -> bool:
    return all(float(v).is_integer() for g in grids for v in torch.as_tensor(g, dtype=torch.float64).flatten())


def conv_code(input, kernel, stride: int = 1, padding: int = 0, dilation: int = 1, bias: float = 0) -> str:
    """F.conv2d on the student's grids, exactly as the notes write it (reshape to (1,1,H,W))."""
    x = torch.as_tensor(input, dtype=torch.float64)
    k = torch.as_tensor(kernel, dtype=torch.float64)
    dtype = "" if _is_integral(x, k, [[bias]]) else ", dtype=torch.float32"
    args = [f"stride={stride}", f"padding={padding}"]
    if dilation != 1:
        args.append(f"dilation={dilation}")
    bias_line = ""
    if bias:
        bias_value = format_number(float(bias), 6)
        bias_line = f"bias = torch.tensor([{bias_value}]{dtype})  # one bias per output channel\n"
        args.insert(0, "bias=bias")
    h, w = x.shape
    kh, kw = k.shape
    return f"""import torch
import torch.nn.functional as F

input = torch.tensor({_literal(x, 21)}{dtype})

kernel = torch.tensor({_literal(k, 22)}{dtype})
{bias_line}
input = torch.reshape(input, (1, 1, {h}, {w}))  # (N, C, H, W)
kernel = torch.reshape(kernel, (1, 1, {kh}, {kw}))  # (out_C, in_C, kH, kW)
print("input shape:", input.shape)
print("kernel shape:", kernel.shape)

output = F.conv2d(input, kernel, {", ".join(args)})
print("output shape:", output.shape)
print(output)
"""


def multi_conv_code(input, weight, bias, stride: int = 1, padding: int = 0) -> str:
    """F.conv2d with a 3-channel input and several kernels, plus the per-channel partial sums."""
    x = torch.as_tensor(input, dtype=torch.float64)
    w = torch.as_tensor(weight, dtype=torch.float64)
    c, h, wd = x.shape
    o = w.shape[0]
    chans = ",\n".join("    " + _literal(x[i], 4) for i in range(c))
    kernels = ",\n".join(
        "    [" + ",\n     ".join(_literal(w[j, i], 5) for i in range(c)) + "]" for j in range(o)
    )
    b = ", ".join(format_number(float(v), 6) for v in bias)
    return f"""import torch
import torch.nn.functional as F

# {c} input channels (like R, G, B), each {h}×{wd}
input = torch.tensor([
{chans}
], dtype=torch.float32)
# {o} kernels (out_channels = {o}), each with one 3-D slice per input channel
weight = torch.tensor([
{kernels}
], dtype=torch.float32)
bias = torch.tensor([{b}], dtype=torch.float32)

input = torch.reshape(input, (1, {c}, {h}, {wd}))  # (N, C_in, H, W)
print("weight shape:", weight.shape)  # (C_out, C_in, kH, kW)
output = F.conv2d(input, weight, bias=bias, stride={stride}, padding={padding})
print("output shape:", output.shape)
print(output)

# The same thing by hand: each input channel gives a partial sum, they are added, plus the bias
for o in range(weight.shape[0]):
    partials = [F.conv2d(input[:, c:c + 1], weight[o:o + 1, c:c + 1], stride={stride}, padding={padding})
                for c in range(input.shape[1])]
    by_hand = sum(partials) + bias[o]
    print(o, torch.allclose(by_hand, output[:, o:o + 1]))
"""


def pool_code(input, kernel_size: int = 3, ceil_mode: bool = True, stride: int | None = None, padding: int = 0,
              dilation: int = 1) -> str:
    """The notes' MaxPool2d module on the 5×5 grid (as float), with AvgPool2d beside it."""
    x = torch.as_tensor(input, dtype=torch.float64)
    h, w = x.shape
    args = [f"kernel_size={kernel_size}"]
    if stride is not None:
        args.append(f"stride={stride}")
    if padding:
        args.append(f"padding={padding}")
    avg_args = list(args)
    if dilation != 1:
        args.append(f"dilation={dilation}")
    args.append(f"ceil_mode={ceil_mode}")
    avg_args.append(f"ceil_mode={ceil_mode}")
    return f"""import torch
from torch import nn
from torch.nn import MaxPool2d

input = torch.tensor({_literal(x, 21)}, dtype=torch.float32)  # MaxPool2d needs floats
input = torch.reshape(input, (-1, 1, {h}, {w}))
print(input.shape)


class Tudui(nn.Module):
    def __init__(self):
        super(Tudui, self).__init__()
        # stride defaults to kernel_size for pooling (Conv2d's default stride is 1)
        self.maxpool1 = MaxPool2d({", ".join(args)})

    def forward(self, input):
        output = self.maxpool1(input)
        return output


tudui = Tudui()
output = tudui(input)
print(output)

# AvgPool2d beside it: the mean of each window instead of the maximum
avgpool = nn.AvgPool2d({", ".join(avg_args)})
print(avgpool(input))
"""


def activation_code(negative_slope: float = 0.01) -> str:
    """ReLU / Sigmoid / Tanh / LeakyReLU on the notes' small tensor, with the inplace flag."""
    return f"""import torch
from torch import nn

input = torch.tensor([[1, -0.5],
                      [-1, 3]])
input = torch.reshape(input, (-1, 1, 2, 2))
print(input.shape)

relu = nn.ReLU()  # inplace=False: the result is a new tensor, input keeps its values
sigmoid = nn.Sigmoid()
tanh = nn.Tanh()
leaky = nn.LeakyReLU({negative_slope})

print(relu(input))
print(sigmoid(input))
print(tanh(input))
print(leaky(input))

# inplace=True overwrites input itself (saves memory, but the original values are gone)
x = torch.tensor([1, -0.5, -1, 3])
nn.ReLU(inplace=True)(x)
print(x)  # tensor([1., 0., 0., 3.])
"""


def flatten_code(batch: int = 64, channels: int = 3, height: int = 32, width: int = 32,
                 out_features: int = 10) -> str:
    """The shape walk [B,C,H,W] → Flatten → Linear, and the torch.flatten(imgs) trap."""
    n = channels * height * width
    return f"""import torch
from torch import nn

imgs = torch.ones({batch}, {channels}, {height}, {width})  # one batch: imgs, targets = data
print("imgs shape before flatten:", imgs.shape)

print(torch.flatten(imgs).shape)  # the classic mistake: the whole batch becomes one vector
flat = torch.flatten(imgs, start_dim=1)  # keep the batch dimension
print("imgs shape after flatten:", flat.shape)
print(nn.Flatten()(imgs).shape)  # nn.Flatten() starts at dim 1 too

linear1 = nn.Linear(in_features={n}, out_features={out_features})
output = linear1(flat)
print("output shape:", output.shape)
print("parameters:", sum(p.numel() for p in linear1.parameters()))  # {n}×{out_features} weights + {out_features} biases
"""


_KERNELS_FN = """
def make_kernels(name, in_channels, out_channels, k, seed=0):
    \"\"\"The page's preset kernels: weight [out_channels, in_channels, k, k].\"\"\"
    if name == "random":  # like nn.Conv2d's own initialisation, seeded
        bound = 1 / (in_channels * k * k) ** 0.5
        gen = torch.Generator().manual_seed(seed)
        return (torch.rand(out_channels, in_channels, k, k, generator=gen) * 2 - 1) * bound
    weight = torch.zeros(out_channels, in_channels, k, k)
    for o in range(out_channels):
        if name == "edges":  # horizontal, vertical, all directions, in turn, on the grey image
            if k == 1:
                plane = torch.ones(1, 1)
            elif o % 3 == 2:
                plane = -torch.ones(k, k)
                plane[k // 2, k // 2] = k * k - 1
            else:
                plane = torch.zeros(k, k)
                plane[:, : k // 2] = -1
                plane[:, k - k // 2:] = 1
                if k == 3:
                    plane[1] *= 2
                if o % 3 == 1:
                    plane = plane.T
            weight[o] = plane / in_channels
            continue
        plane = torch.zeros(k, k)
        if name == "identity":
            plane[k // 2, k // 2] = 1
        elif name == "blur":
            plane.fill_(1 / (k * k))
        else:  # sharpen
            plane.fill_(-1 / (k * k))
            plane[k // 2, k // 2] += 2
        weight[o, o % in_channels] = plane  # output channel o looks at input channel o % in_channels
    return weight
"""


def image_layers_code(preset: str, out_channels: int = 6, kernel_size: int = 3, padding: int = 0,
                      pool: int = 2, in_channels: int = 3, seed: int = 0) -> str:
    """Conv2d(in, out, k) with the preset kernel on a batch, the notes' reshape, MaxPool/ReLU/Sigmoid."""
    reshape = ""
    if out_channels % 3 == 0:
        reshape = """
# The notes' trick to look at the output with add_images: 3 channels at a time
output = torch.reshape(output, (-1, 3, output.shape[2], output.shape[3]))
print("reshaped for add_images:", output.shape)
"""
    return f"""import torch
from torch import nn
from torch.nn import Conv2d, MaxPool2d, ReLU, Sigmoid
{_KERNELS_FN}

# In the course: imgs, targets = data  (a batch from the CIFAR10 test DataLoader, batch_size=64)
imgs = torch.rand(64, {in_channels}, 32, 32)

conv1 = Conv2d(in_channels={in_channels}, out_channels={out_channels}, kernel_size={kernel_size}, stride=1, padding={padding})
with torch.no_grad():
    conv1.weight.copy_(make_kernels("{preset}", {in_channels}, {out_channels}, {kernel_size}, seed={seed}))
    conv1.bias.zero_()

output = conv1(imgs)
print(imgs.shape)    # torch.Size([64, {in_channels}, 32, 32])
print(output.shape)  # one feature map per kernel (out_channels = {out_channels})
{reshape}
print(MaxPool2d({pool})(imgs).shape)
print(ReLU()(conv1(imgs)).min())     # no negative numbers left
print(Sigmoid()(conv1(imgs)).max())  # squeezed into (0, 1)
"""
