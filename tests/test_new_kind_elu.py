"""Issue 13's proof: nn.ELU was added as ONE entry in dl_core/layer_kinds.py plus its one string
(`model.arg.alpha` in locales/model.json) and nothing else. Here it is in the builder, the printed model,
the generated code, the shape check and checkpoint loading, with PyTorch as the oracle."""
import torch
from torch import nn

from dl_core.checkpoint import Checkpoint, load_any, to_bytes, way1_bytes
from dl_core.codegen.model import layer_code, tudui_class
from dl_core.models import LayerSpec, ModelSpec, build_model, check_spec, course_cnn, print_model
from tests.conftest import assert_clean, new_app

CIFAR = (3, 32, 32)
SPEC = ModelSpec(course_cnn().layers[:1] + (LayerSpec("ELU", {"alpha": 0.5}),) + course_cnn().layers[1:])


def test_elu_prints_and_shapes_like_pytorch():
    model = build_model(SPEC)
    assert isinstance(model[1], nn.ELU) and model[1].alpha == 0.5
    assert print_model(SPEC) == str(model)
    rows = check_spec(SPEC, CIFAR)
    x = torch.rand(1, *CIFAR)
    for row, layer in zip(rows, model):
        x = layer(x)
        assert row.output_shape == tuple(x.shape[1:])


def test_elu_in_the_generated_code():
    assert layer_code(SPEC.layers[1]) == "nn.ELU(alpha=0.5)"
    namespace: dict = {}
    exec("import torch\nfrom torch import nn\n" + tudui_class(SPEC), namespace)  # noqa: S102 - our own code
    generated = namespace["Tudui"]()
    assert str(generated.model1 if hasattr(generated, "model1") else generated).count("ELU(alpha=0.5)") == 1


def test_elu_through_both_checkpoint_kinds():
    model = build_model(SPEC)
    ckpt = Checkpoint(spec=SPEC, state_dict=model.state_dict(), classes=list("abcdefghij"))
    ours = load_any(to_bytes(ckpt))
    assert ours.kind == "ours" and ours.checkpoint.spec == SPEC
    whole = load_any(way1_bytes(ckpt))  # torch.save(tudui): recognised from its attributes
    assert whole.kind == "whole_model" and "ELU(alpha=0.5)" in print_model(whole.checkpoint.spec)


def test_elu_in_the_builder(lang):
    at = new_app(lang, "app_pages/model.py")
    at.selectbox(key="model.add_kind").set_value("ELU")
    at.number_input(key="model.add_pos").set_value(1)
    at.button(key="model.add").click().run()
    assert_clean(at)
    spec = at.session_state["ws.spec"]
    assert spec.layers[1].kind == "ELU"
    uid = at.session_state["model.rows"][1][0]
    at.number_input(key=f"model.l{uid}.ELU.alpha").set_value(0.5).run()
    assert at.session_state["ws.spec"].layers[1].args == {"alpha": 0.5}
    assert "145,578" in "\n".join(str(e.value) for e in at.success)  # ELU has no parameters
