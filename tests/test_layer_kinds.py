"""The layer-kind registry (dl_core/layer_kinds.py), with PyTorch as the oracle: defaults are torch's own,
the printed and code forms are what torch prints, the shape rules are what a real forward pass gives.

Dropout and AvgPool2d prove the registry: each is one entry, and each shows up in print(model), the
generated code, check_spec's shapes and checkpoint loading (the builder page: tests/test_page_model.py).
"""
from __future__ import annotations

import inspect
import io
from collections import OrderedDict

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dl_core import layer_kinds
from dl_core.checkpoint import Checkpoint, load_any, to_bytes, way1_bytes, way2_bytes
from dl_core.codegen.model import layer_code, tudui_class
from dl_core.errors import CourseError
from dl_core.i18n import LANGS, catalog
from dl_core.layer_kinds import KINDS
from dl_core.models import (
    LAYER_KINDS, LayerSpec, ModelSpec, build_model, canonical, check_spec, count_parameters, fix_spec, new_layer,
    print_model, same_network, summarize,
)
from dl_core.preprocess import Preprocessing

CIFAR = (3, 32, 32)


# ---------------------------------------------------------------------------------------------- the entries
def test_defaults_are_torchs_own_signature():
    for kind in KINDS.values():
        signature = inspect.signature(kind.torch_class).parameters
        for arg in kind.args:
            assert arg.name in signature, (kind.name, arg.name)
            assert arg.default is signature[arg.name].default, (kind.name, arg.name)
        assert kind.required == tuple(n for n, p in signature.items() if p.default is p.empty and
                                      p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def test_every_kind_has_a_unique_link_name_and_argument_letters():
    assert len({k.code for k in KINDS.values()}) == len(KINDS)
    for kind in KINDS.values():
        assert kind.code.isalpha() and kind.code.islower()
        codes = [a.code for a in kind.args if not a.required]
        assert all(c.isalpha() and c.islower() for c in codes) and len(set(codes)) == len(codes), kind.name
    assert LAYER_KINDS == tuple(KINDS)


def test_what_the_builder_edits_has_a_label_in_both_languages():
    for kind in KINDS.values():
        assert len(kind.edit) <= 5, kind.name  # the editor row has five argument columns
        for name in kind.edit:
            arg = kind.arg(name)
            assert arg is not None and arg.label, (kind.name, name)
            assert set(catalog()[arg.label]) == set(LANGS), arg.label
        assert layer_kinds.resolve(0, kind, kind.start) is not None  # a new layer's arguments are valid ones


def test_the_error_codes_the_registry_raises_are_translated():
    for code in ("model.not_number", "model.not_flag", "model.link_kind", "model.link_token", "model.link_value",
                 "model.link_missing", "model.link_name", "model.link_twice", "model.link_too_long"):
        assert f"error.{code}" in catalog()


def test_canonical_drops_exactly_torchs_defaults():
    spec = ModelSpec((LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "stride": 1,
                                           "padding": 0, "groups": 1, "bias": True, "padding_mode": "zeros"}),
                      LayerSpec("BatchNorm2d", {"num_features": 8, "eps": 1e-5, "momentum": 0.2}),
                      LayerSpec("MaxPool2d", {"kernel_size": 2, "stride": None}),
                      LayerSpec("Dropout", {"p": 0.5}), LayerSpec("Flatten", {"start_dim": 1})))
    assert [x.args for x in canonical(spec).layers] == [
        {"in_channels": 3, "out_channels": 8, "kernel_size": 3}, {"num_features": 8, "momentum": 0.2},
        {"kernel_size": 2}, {}, {}]
    assert str(build_model(canonical(spec))) == str(build_model(spec))


def test_unknown_and_wrongly_typed_arguments_are_named():
    cases = [(LayerSpec("Dropout", {"p": "half"}), "model.not_number"),
             (LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "bias": "yes"}),
              "model.not_flag"),
             (LayerSpec("AvgPool2d", {"kernel_size": 2, "divisor_override": 3}), "model.unknown_arg"),
             (LayerSpec("AvgPool2d", {"kernel_size": 2, "stride": 0}), "model.bad_value"),
             (LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 8}), "model.missing_arg")]
    for layer, code in cases:
        with pytest.raises(CourseError) as e:
            check_spec(ModelSpec((layer,)), CIFAR)
        assert e.value.code == code and e.value.params["index"] == 0, layer


def test_new_layers_fit_the_shape_arriving_there():
    assert new_layer("Conv2d", (16, 8, 8)).args["in_channels"] == 16
    assert new_layer("BatchNorm2d", (16, 8, 8)).args == {"num_features": 16}
    assert new_layer("Linear", (256,)).args == {"in_features": 256, "out_features": 10}
    assert new_layer("Linear", (16, 8, 8)).args["in_features"] == 1024  # a feature map: the starting value
    assert new_layer("Dropout", (256,)).args == {"p": 0.5}
    assert new_layer("AvgPool2d", names=["conv1", "avgpool2d1"]).name == "avgpool2d2"
    assert new_layer("ReLU", names=["conv1", None]).name is None


def test_fix_sets_each_kinds_fitting_argument():
    broken = ModelSpec((LayerSpec("Conv2d", {"in_channels": 1, "out_channels": 8, "kernel_size": 3}),
                        LayerSpec("BatchNorm2d", {"num_features": 3}), LayerSpec("AvgPool2d", {"kernel_size": 2}),
                        LayerSpec("Dropout", {"p": 0.2}),
                        LayerSpec("Linear", {"in_features": 5, "out_features": 10})))
    fixed = fix_spec(broken, CIFAR)
    assert fixed is not None
    assert [x.kind for x in fixed.layers] == ["Conv2d", "BatchNorm2d", "AvgPool2d", "Dropout", "Flatten", "Linear"]
    assert fixed.layers[0].args["in_channels"] == 3 and fixed.layers[1].args["num_features"] == 8
    assert fixed.layers[5].args["in_features"] == 8 * 15 * 15
    assert build_model(fixed)(torch.zeros(1, *CIFAR)).shape == (1, 10)


# ---------------------------------------------------------------------------------------------- random specs
def _pair_or_int(draw, lo: int, hi: int):
    if draw(st.integers(0, 4)) == 0:
        return [draw(st.integers(lo, hi)), draw(st.integers(lo, hi))]
    return draw(st.integers(lo, hi))


def _image_layer(draw, shape):
    """A layer for a C×H×W map, with random optional arguments (torch's defaults left out half the time)."""
    kind = draw(st.sampled_from(["Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "Sigmoid", "Tanh", "LeakyReLU",
                                 "Dropout", "BatchNorm2d"]))
    maybe = st.booleans()
    if kind == "Conv2d":
        args = {"in_channels": shape[0], "out_channels": draw(st.integers(1, 5)),
                "kernel_size": _pair_or_int(draw, 1, 4)}
        for name, value in (("stride", _pair_or_int(draw, 1, 3)), ("padding", draw(st.integers(0, 2))),
                            ("dilation", draw(st.integers(1, 2))), ("bias", draw(st.booleans()))):
            if draw(maybe):
                args[name] = value
    elif kind in ("MaxPool2d", "AvgPool2d"):
        k = draw(st.integers(1, 3))
        args = {"kernel_size": k, "padding": draw(st.integers(0, k // 2)), "ceil_mode": draw(st.booleans())}
        if draw(maybe):
            args["stride"] = draw(st.integers(1, 3))
        if kind == "AvgPool2d" and draw(maybe):
            args["count_include_pad"] = draw(st.booleans())
        if kind == "MaxPool2d" and draw(maybe):
            args["dilation"] = draw(st.integers(1, 2))
    elif kind == "BatchNorm2d":
        args = {"num_features": shape[0]}
        if draw(maybe):
            args["eps"] = draw(st.sampled_from([1e-3, 1e-5, 0.01]))
        if draw(maybe):
            args["momentum"] = draw(st.sampled_from([None, 0.2, 0.1]))
    else:
        args = _activation_args(draw, kind)
    return LayerSpec(kind, args)


def _activation_args(draw, kind: str) -> dict:
    if kind == "LeakyReLU" and draw(st.booleans()):
        return {"negative_slope": draw(st.sampled_from([0.2, -0.1, 0.01, 1.5]))}
    if kind == "Dropout" and draw(st.booleans()):
        return {"p": draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))}
    if kind in ("ReLU", "LeakyReLU", "Dropout") and draw(st.integers(0, 5)) == 0:
        return {"inplace": True}
    return {}


@st.composite
def valid_specs(draw, max_image_layers: int = 5):
    """(spec, C×H×W) for random networks of every kind: image layers, Flatten, then Linear and activations.
    A drawn layer check_spec refuses (a kernel too big for what is left) is left out; the oracle is torch."""
    shape = (draw(st.integers(1, 4)), draw(st.integers(3, 16)), draw(st.integers(3, 16)))
    layers: list[LayerSpec] = []
    arriving = shape
    for _ in range(draw(st.integers(0, max_image_layers))):
        layer = _image_layer(draw, arriving)
        try:
            arriving = check_spec(ModelSpec((*layers, layer)), shape)[-1].output_shape
        except CourseError:
            continue
        layers.append(layer)
    layers.append(LayerSpec("Flatten"))
    features = arriving[0] * arriving[1] * arriving[2]
    for _ in range(draw(st.integers(1, 3))):
        out = draw(st.integers(1, 6))
        linear = {"in_features": features, "out_features": out}
        if draw(st.integers(0, 4)) == 0:
            linear["bias"] = False
        layers.append(LayerSpec("Linear", linear))
        features = out
        kind = draw(st.sampled_from(["ReLU", "Sigmoid", "Tanh", "LeakyReLU", "Dropout", None]))
        if kind:
            layers.append(LayerSpec(kind, _activation_args(draw, kind)))
    if draw(st.integers(0, 3)) == 0:  # note 003's named form
        layers = [LayerSpec(x.kind, x.args, f"{x.kind.lower()}_{i}") for i, x in enumerate(layers)]
    return ModelSpec(tuple(layers)), shape


def _forward_shapes(model: nn.Module, shape) -> list[tuple[int, ...]]:
    seen = []
    for m in model:
        m.register_forward_hook(lambda mod, i, o: seen.append(tuple(o.shape[1:])))
    with torch.no_grad():
        model.eval()(torch.rand((2, *shape)))
    return seen


def _exec_code(spec: ModelSpec) -> nn.Module:
    """The generated Tudui class, executed: its `model` attribute."""
    namespace: dict = {}
    exec("import torch\nfrom torch import nn\nfrom collections import OrderedDict\n" + tudui_class(spec), namespace)
    return namespace["Tudui"]().model


@settings(max_examples=60, deadline=None)
@given(valid_specs())
def test_every_kind_agrees_with_pytorch(case):
    """check_spec's shapes and parameters, print_model and the generated code, against torch itself."""
    spec, shape = case
    model = build_model(spec)
    rows = check_spec(spec, shape)
    assert [r.output_shape for r in rows] == _forward_shapes(model, shape)
    assert [r.params for r in rows] == [count_parameters(m) for m in model]
    assert [KINDS[x.kind].parameter_count(x.args) for x in spec.layers] == [r.params for r in rows]
    assert print_model(spec) == str(model)
    assert str(_exec_code(spec)) == str(model)
    assert summarize(spec, shape).total_params == count_parameters(model)


# ---------------------------------------------------------------------------------------------- Dropout, AvgPool2d
# One entry each in KINDS: everything below comes from those entries.
NEW_KINDS = ModelSpec((
    LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": 1}),
    LayerSpec("ReLU"),
    LayerSpec("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    LayerSpec("Conv2d", {"in_channels": 8, "out_channels": 8, "kernel_size": 3, "padding": 1}),
    LayerSpec("AvgPool2d", {"kernel_size": 2}),
    LayerSpec("Flatten"),
    LayerSpec("Linear", {"in_features": 8 * 8 * 8, "out_features": 16}),
    LayerSpec("ReLU"),
    LayerSpec("Dropout", {"p": 0.25}),
    LayerSpec("Linear", {"in_features": 16, "out_features": 10}),
))


def _seeded(spec: ModelSpec, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(spec).eval()


def test_dropout_and_avgpool_print_as_pytorch_prints_them():
    text = print_model(NEW_KINDS)
    assert text == str(build_model(NEW_KINDS))
    assert "(2): AvgPool2d(kernel_size=3, stride=2, padding=1)" in text
    assert "(8): Dropout(p=0.25, inplace=False)" in text


def test_dropout_and_avgpool_in_the_generated_code():
    assert layer_code(NEW_KINDS.layers[2]) == "nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)"
    assert layer_code(NEW_KINDS.layers[4]) == "nn.AvgPool2d(2)"
    assert layer_code(NEW_KINDS.layers[8]) == "nn.Dropout(p=0.25)"
    generated = _exec_code(NEW_KINDS)
    assert str(generated) == str(build_model(NEW_KINDS))
    assert not generated[2].count_include_pad  # not in the printout: checked on the module
    named = ModelSpec(tuple(LayerSpec(x.kind, x.args, f"layer{i}") for i, x in enumerate(NEW_KINDS.layers)))
    assert str(_exec_code(named)) == str(build_model(named)) == print_model(named)


def test_dropout_and_avgpool_shapes_match_a_forward_pass():
    rows = check_spec(NEW_KINDS, CIFAR)
    assert [r.output_shape for r in rows] == _forward_shapes(build_model(NEW_KINDS), CIFAR)
    assert rows[2].output_shape == (8, 16, 16) and rows[2].formula.endswith("= 16")
    assert rows[8].output_shape == (16,) and rows[8].params == 0
    with pytest.raises(CourseError) as e:  # p must be a probability
        check_spec(ModelSpec(NEW_KINDS.layers[:8] + (LayerSpec("Dropout", {"p": 1.5}),)), CIFAR)
    assert (e.value.code, e.value.params["index"]) == ("model.dropout_p", 8)
    with pytest.raises(CourseError) as e:  # AvgPool2d's padding rule is torch's: at most half the kernel
        check_spec(ModelSpec(NEW_KINDS.layers[:2] + (LayerSpec("AvgPool2d", {"kernel_size": 2, "padding": 2}),)),
                   CIFAR)
    assert (e.value.code, e.value.params["index"]) == ("model.pool_padding", 2)


def test_dropout_and_avgpool_round_trip_through_our_checkpoint():
    model = _seeded(NEW_KINDS, 3)
    ckpt = Checkpoint(spec=NEW_KINDS, state_dict=model.state_dict(), classes=list("abcdefghij"),
                      preprocessing=Preprocessing())
    loaded = load_any(to_bytes(ckpt))
    assert loaded.kind == "ours" and loaded.checkpoint.spec == NEW_KINDS
    x = torch.rand(2, *CIFAR)
    with torch.no_grad():
        assert torch.equal(loaded.checkpoint.build()(x), model(x))


def test_dropout_and_avgpool_are_recognised_in_a_whole_model_file():
    """Way 1 (torch.save(tudui)): each layer from its attributes, count_include_pad included."""
    model = _seeded(NEW_KINDS, 4)
    ckpt = Checkpoint(spec=NEW_KINDS, state_dict=model.state_dict(), classes=list("abcdefghij"))
    loaded = load_any(way1_bytes(ckpt))
    assert loaded.kind == "whole_model" and same_network(loaded.checkpoint.spec, NEW_KINDS)
    x = torch.rand(2, *CIFAR)
    with torch.no_grad():
        assert torch.equal(loaded.checkpoint.build()(x), model(x))


def test_a_plain_state_dict_with_dropout_and_avgpool():
    """Way 2: layers with tensors (Conv2d, Linear, BatchNorm2d) are recognised from their shapes; Dropout and
    AvgPool2d leave no tensors, so those places are guessed (an activation, a pooling of the same size)."""
    model = _seeded(NEW_KINDS, 5)
    ckpt = Checkpoint(spec=NEW_KINDS, state_dict=model.state_dict(), classes=list("abcdefghij"))
    loaded = load_any(way2_bytes(ckpt))
    spec = loaded.checkpoint.spec
    assert loaded.matched == "inferred" and len(spec.layers) == len(NEW_KINDS.layers)
    for i in (0, 3, 6, 9):  # the layers with weights: exactly as built
        assert canonical(ModelSpec((spec.layers[i],))) == canonical(ModelSpec((NEW_KINDS.layers[i],))), i
    assert [x.kind for x in spec.layers][7:9] == ["ReLU", "ReLU"]  # ReLU, Dropout: in eval mode the same outputs
    assert [r.output_shape for r in check_spec(spec, CIFAR)] == [r.output_shape for r in check_spec(NEW_KINDS, CIFAR)]
    assert count_parameters(loaded.checkpoint.build()) == count_parameters(model)
    bn = ModelSpec((LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1,
                                         "bias": False}),
                    LayerSpec("BatchNorm2d", {"num_features": 4}), LayerSpec("ReLU"),
                    LayerSpec("MaxPool2d", {"kernel_size": 2}), LayerSpec("Flatten"),
                    LayerSpec("Linear", {"in_features": 4 * 16 * 16, "out_features": 10})))
    buf = io.BytesIO()
    torch.save(_seeded(bn, 6).state_dict(), buf)
    assert same_network(load_any(buf.getvalue()).checkpoint.spec, bn)


def test_recognising_layers_from_their_tensors():
    def tensors(module: nn.Module) -> dict:
        return dict(module.state_dict())
    assert layer_kinds.recognise(tensors(nn.Conv2d(3, 8, (3, 5), bias=False))) == (
        "Conv2d", {"in_channels": 3, "out_channels": 8, "kernel_size": [3, 5], "padding": [1, 2], "bias": False})
    assert layer_kinds.recognise(tensors(nn.Linear(7, 2))) == ("Linear", {"in_features": 7, "out_features": 2})
    assert layer_kinds.recognise(tensors(nn.BatchNorm2d(6))) == ("BatchNorm2d", {"num_features": 6})
    assert layer_kinds.recognise({"weight": torch.zeros(2, 2, 2)}) is None
    assert set(layer_kinds.gap_fillers()) == {"pool", "activation"}


def test_named_layers_keep_their_names_everywhere():
    named = ModelSpec(tuple(LayerSpec(x.kind, x.args, n) for x, n in zip(NEW_KINDS.layers[:3], ("c", "r", "p"))))
    model = build_model(named)
    assert isinstance(model._modules, (dict, OrderedDict)) and list(model._modules) == ["c", "r", "p"]
    assert print_model(named) == str(model) and "(p): AvgPool2d" in print_model(named)
