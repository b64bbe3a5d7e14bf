"""Code for the save/load page: the course's two ways to save, and loading back (map_location, safely)."""
from __future__ import annotations

from dl_core.codegen.model import imports, tudui_class
from dl_core.models import ModelSpec


def imports_for(spec: ModelSpec) -> str:
    """The import lines a script with this spec's `class Tudui` needs (OrderedDict for the named form)."""
    return imports(spec.named)


def save_code(spec: ModelSpec, path1: str = "tudui_method1.pth", path2: str = "tudui_method2.pth") -> str:
    """Course step 16: way 1 (the whole model) and way 2 (the state_dict, recommended), with file sizes."""
    return f'''import os

{imports_for(spec)}

{tudui_class(spec)}

tudui = Tudui()  # in train.py: the model you just trained

# Way 1: structure + parameters (pickles the class Tudui by name: __main__.Tudui)
torch.save(tudui, "{path1}")

# Way 2 (recommended): parameters only, a dict of tensors
torch.save(tudui.state_dict(), "{path2}")

print(os.path.getsize("{path1}"), "bytes (way 1)")
print(os.path.getsize("{path2}"), "bytes (way 2)")
'''


def load_code(spec: ModelSpec, path1: str = "tudui_method1.pth", path2: str = "tudui_method2.pth") -> str:
    """Loading both ways back: way 2 with load_state_dict, way 1 weights-only with the class allowlisted."""
    layer_classes = sorted({f"nn.{layer.kind}" for layer in spec.layers} | {"nn.Sequential"})
    return f'''{imports_for(spec)}

# Way 1 needs the class definition (or `from model import *`) in the loading script
{tudui_class(spec)}

# Way 2 (recommended): build the model, then load the parameters into it.
# map_location: a model trained on a GPU loads on a CPU-only machine too.
tudui = Tudui()
tudui.load_state_dict(torch.load("{path2}", map_location=torch.device("cpu"), weights_only=True))
tudui.eval()
print(tudui)

# Way 1: torch.load(path) now defaults to weights_only=True and refuses the class Tudui
# ("Unsupported global: GLOBAL __main__.Tudui"). weights_only=False would run any code hidden
# in the file: only for files you made yourself. The safe way: allowlist exactly these classes.
with torch.serialization.safe_globals([Tudui, {", ".join(layer_classes)}]):
    model = torch.load("{path1}", map_location=torch.device("cpu"), weights_only=True)
model.eval()
print(model)
'''
