"""The generated code runs in a fresh interpreter and prints the course's numbers."""
import subprocess
import sys

import pytest

from dl_core.codegen.layers import (
    activation_code, conv_code, flatten_code, image_layers_code, multi_conv_code, pool_code,
)
from dl_core.layers import COURSE_INPUT, COURSE_KERNEL, KERNEL_PRESETS, MULTI_BIAS, MULTI_INPUT, MULTI_WEIGHT


# Every script the tests need, run in ONE fresh interpreter (importing torch costs seconds here),
# each in its own namespace as if it were its own file.
SCRIPTS = {
    "conv_s1": conv_code(COURSE_INPUT, COURSE_KERNEL, 1, 0),
    "conv_s2": conv_code(COURSE_INPUT, COURSE_KERNEL, 2, 0),
    "conv_p1": conv_code(COURSE_INPUT, COURSE_KERNEL, 1, 1),
    "conv_frac": conv_code([[0.5, 1, 2], [1, 1, 1], [3, 2, 1]], [[1, 0], [0, -1]], 1, 1, 2, 1.5),
    "pool_ceil": pool_code(COURSE_INPUT, 3, True),
    "pool_floor": pool_code(COURSE_INPUT, 3, False),
    "multi": multi_conv_code(MULTI_INPUT, MULTI_WEIGHT, MULTI_BIAS),
    "act": activation_code(),
    "flat": flatten_code(),
    "img_edges": image_layers_code("edges", 6, 3),
}
DRIVER = """
import sys, torch
torch.set_num_threads(1)
for name, code in SCRIPTS.items():
    print("=== " + name)
    exec(compile(code, name + ".py", "exec"), {"__name__": "__main__"})
"""


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    done = subprocess.run([sys.executable, "-c", f"SCRIPTS = {SCRIPTS!r}\n" + DRIVER],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    parts = done.stdout.split("=== ")[1:]
    return {p.split("\n", 1)[0]: " ".join(p.split("\n", 1)[1].split()) for p in parts}


@pytest.mark.parametrize("name, expected", [
    ("conv_s1", "[[[[10, 12, 12], [18, 16, 16], [13, 9, 3]]]]"),
    ("conv_s2", "[[[[10, 12], [13, 3]]]]"),
    ("conv_p1", "[[[[ 1, 3, 4, 10, 8], [ 5, 10, 12, 12, 6], [ 7, 18, 16, 16, 8], [11, 13, 9, 3, 4], "
           "[14, 13, 9, 7, 4]]]]"),
])
def test_conv_code_prints_course_numbers(outputs, name, expected):
    assert "input = torch.reshape(input, (1, 1, 5, 5))" in SCRIPTS[name]
    assert f"tensor({expected})" in outputs[name]


def test_conv_code_with_bias_dilation_and_fractions(outputs):
    out = outputs["conv_frac"]
    assert "output shape: torch.Size([1, 1, 3, 3])" in out


def test_pool_code_prints_course_numbers(outputs):
    assert "tensor([[[[2., 3.], [5., 1.]]]])" in outputs["pool_ceil"]
    assert "tensor([[[[2.]]]])" in outputs["pool_floor"]


def test_multi_conv_code_partials_add_up(outputs):
    out = outputs["multi"]
    assert "output shape: torch.Size([1, 2, 3, 3])" in out
    assert "0 True" in out and "1 True" in out


def test_activation_and_flatten_code(outputs):
    assert "tensor([1., 0., 0., 3.])" in outputs["act"]
    out = outputs["flat"]
    assert "torch.Size([196608])" in out and "torch.Size([64, 3072])" in out
    assert "output shape: torch.Size([64, 10])" in out and "parameters: 30730" in out


def test_image_layers_code_rebuilds_the_page_kernels(outputs):
    import torch

    from dl_core.layers import preset_weight
    for preset in KERNEL_PRESETS:
        code = image_layers_code(preset, 6, 3)
        namespace: dict = {}
        exec(code.split("# In the course")[0], namespace)  # just the make_kernels helper
        assert torch.allclose(namespace["make_kernels"](preset, 3, 6, 3, seed=0), preset_weight(preset, 3, 6, 3, 0))
    out = outputs["img_edges"]
    assert "torch.Size([64, 6, 30, 30])" in out and "torch.Size([2, 3, 30, 30])" not in out
    assert "reshaped for add_images: torch.Size([128, 3, 30, 30])" in out
