"""Code for the builder page: the current network as the course writes it (class Tudui), and VGG16's changes."""
from __future__ import annotations

from dl_core import layer_kinds
from dl_core.existing import MODIFICATION_CODE, MODIFICATIONS
from dl_core.models import LayerSpec, ModelSpec


def layer_code(layer: LayerSpec) -> str:
    """`nn.Conv2d(3, 32, 5, padding=2)`: the kind's code form (required arguments by position, torch's
    defaults left out), as the course writes it."""
    return layer_kinds.get(layer.kind).code_form(layer.args)


def imports(ordered: bool) -> str:
    """The import lines a Tudui script needs (OrderedDict only for note 003's named form)."""
    return ("from collections import OrderedDict\n\n" if ordered else "") + "import torch\nfrom torch import nn\n"


def tudui_class(spec: ModelSpec, ordered: bool | None = None) -> str:
    """`class Tudui(nn.Module)` with `self.model = nn.Sequential(...)`, as the course's model.py has it.

    `ordered=True` writes note 003's `nn.Sequential(OrderedDict([('conv1', ...), ...]))` form;
    None picks it when every layer has a name.
    """
    if ordered is None:
        ordered = spec.named
    if ordered:
        names = [layer.name or f"layer{i}" for i, layer in enumerate(spec.layers)]
        body = "\n".join(f"            ({name!r}, {layer_code(layer)})," for name, layer in zip(names, spec.layers))
        seq = f"nn.Sequential(OrderedDict([\n{body}\n        ]))"
    else:
        body = "\n".join(f"            {layer_code(layer)}," for layer in spec.layers)
        seq = f"nn.Sequential(\n{body}\n        )"
    return f'''class Tudui(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = {seq}

    def forward(self, x):
        x = self.model(x)
        return x
'''


def model_code(spec: ModelSpec, input_shape: tuple[int, int, int] = (3, 32, 32), ordered: bool = False,
               batch_size: int = 64) -> str:
    """The course's model.py: `class Tudui(nn.Module)` with `self.model = nn.Sequential(...)`, and the
    `torch.ones((64, C, H, W))` check printing the output shape and the parameter count.

    `ordered=True` writes note 003's `nn.Sequential(OrderedDict([('conv1', ...), ...]))` form.
    """
    c, h, w = input_shape
    return f'''{imports(ordered)}

{tudui_class(spec, ordered)}

if __name__ == "__main__":
    tudui = Tudui()
    print(tudui)
    input = torch.ones(({batch_size}, {c}, {h}, {w}))
    output = tudui(input)
    print(output.shape)
    print(sum(p.numel() for p in tudui.parameters()))
'''


def vgg_code(modification: str | None = None, freeze: bool = False, pretrained: bool = False) -> str:
    """Course step 15: load VGG16, optionally modify it for CIFAR10's 10 classes and freeze `features`."""
    lines = ["import torchvision", "from torch import nn", ""]
    if pretrained:
        lines += ["from torchvision.models import VGG16_Weights", "",
                  "# needs the weights file in the torch cache (or an internet connection to download it)",
                  "vgg16 = torchvision.models.vgg16(weights=VGG16_Weights.IMAGENET1K_V1)"]
    else:
        lines += ["vgg16 = torchvision.models.vgg16(weights=None)"]
    if modification is not None:
        if modification not in MODIFICATIONS:
            raise ValueError(f"unknown modification {modification!r}")
        lines.append(MODIFICATION_CODE[modification])
    if freeze:
        lines += ["", "for param in vgg16.features.parameters():", "    param.requires_grad = False"]
    lines += ["", "print(vgg16)",
              "print(sum(p.numel() for p in vgg16.parameters()))",
              "print(sum(p.numel() for p in vgg16.parameters() if p.requires_grad))", ""]
    return "\n".join(lines)

