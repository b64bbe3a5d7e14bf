"""Code for the predict page: the course's test.py for the current model and preprocessing."""
from __future__ import annotations

from dl_core.codegen.checkpoint import imports_for
from dl_core.codegen.model import tudui_class
from dl_core.models import ModelSpec
from dl_core.preprocess import Preprocessing


def predict_code(spec: ModelSpec, preprocessing: Preprocessing, classes: list[str],
                 image_path: str = "dog.png", model_path: str = "tudui_method2.pth") -> str:
    """Course step 19 (test.py): open → convert("RGB") → Resize → ToTensor (→ Normalize) → reshape
    → eval + no_grad → argmax(1), for this network, preprocessing and class names."""
    h, w = preprocessing.size
    c = preprocessing.channels
    steps = []
    if c == 1:
        steps.append("    v2.Grayscale(num_output_channels=1),")
    steps += [f"    v2.Resize(({h}, {w})),",
              "    v2.ToImage(),",
              "    v2.ToDtype(torch.float32, scale=True),  # = ToTensor(): 0..255 → 0..1"]
    if preprocessing.mean is not None and preprocessing.std is not None:
        steps.append(f"    v2.Normalize({list(preprocessing.mean)}, {list(preprocessing.std)}),")
    transform = "\n".join(steps)
    return f'''{imports_for(spec)}from PIL import Image
from torchvision.transforms import v2


{tudui_class(spec)}

classes = {list(classes)!r}

image_path = "{image_path}"
image = Image.open(image_path)
image = image.convert("RGB")  # a PNG has 4 channels (RGBA): keep only RGB
print(image)

transform = v2.Compose([
{transform}
])
image = transform(image)
print(image.shape)  # torch.Size([{c}, {h}, {w}])

model = Tudui()
# map_location: the model may have been trained on a GPU
model.load_state_dict(torch.load("{model_path}", map_location=torch.device("cpu"), weights_only=True))

image = torch.reshape(image, (1, {c}, {h}, {w}))
model.eval()
with torch.no_grad():
    output = model(image)
print(output)
print(output.softmax(1))
print(output.argmax(1))
print(classes[output.argmax(1).item()])
'''
