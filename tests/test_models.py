"""The model spec: the course's network, presets, the shape arithmetic against real forward passes, errors."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dl_core.arithmetic import conv_output_size, size_formula
from dl_core.errors import CourseError
from dl_core.models import (
    LAYER_KINDS, MAX_PARAMETERS, PRESETS, LayerSpec, ModelSpec, build_model, build_model_seeded,
    channel_grid, check_partial, check_spec, count_parameters, course_cnn, decode_image, fix_spec,
    layer_outputs, padding_table, preset, summarize,
)

CIFAR = (3, 32, 32)
MNIST = (1, 28, 28)


def _with(spec: ModelSpec, index: int, **args) -> ModelSpec:
    layers = list(spec.layers)
    old = layers[index]
    layers[index] = LayerSpec(old.kind, {**old.args, **args}, old.name)
    return ModelSpec(tuple(layers))


def _without(spec: ModelSpec, index: int) -> ModelSpec:
    return ModelSpec(spec.layers[:index] + spec.layers[index + 1:])


def test_course_cnn_parameters_and_output_shape():
    model = build_model(course_cnn())
    assert count_parameters(model) == 145_578
    assert model(torch.ones((64, 3, 32, 32))).shape == torch.Size([64, 10])


def test_course_cnn_summary_rows_and_totals():
    s = summarize(course_cnn(), CIFAR)
    assert [r.output_shape for r in s.rows] == [
        (32, 32, 32), (32, 16, 16), (32, 16, 16), (32, 8, 8), (64, 8, 8), (64, 4, 4), (1024,), (64,), (10,)]
    assert [r.params for r in s.rows] == [2432, 0, 25632, 0, 51264, 0, 0, 65600, 650]
    assert s.total_params == s.trainable_params == 145_578
    assert s.size_mb == pytest.approx(145_578 * 4 / 1e6)
    assert s.total_macs * 2 == pytest.approx(24.7e6, rel=0.01)  # PERFORMANCE.md: 24.7 MFLOP per image
    # the builder's formula is the arithmetic module's own text (one owner), ending in the size
    assert s.rows[0].formula == size_formula(32, 5, 1, 2, 1) and s.rows[0].formula.endswith("= 32")
    assert s.rows[1].formula == size_formula(32, 2, 2, 0, 1) and s.rows[1].formula.endswith("= 16")
    assert s.rows[6].formula == "64×4×4 = 1024"


def test_summary_of_a_module_matches_summary_of_its_spec():
    spec = preset("course_bn_dropout")
    a, b = summarize(spec, CIFAR), summarize(build_model(spec), CIFAR)
    assert [(r.name, r.kind, r.output_shape, r.params, r.macs) for r in a.rows] == \
           [(r.name, r.kind, r.output_shape, r.params, r.macs) for r in b.rows]


def test_presets_follow_the_dataset():
    assert preset("course") == course_cnn()
    mnist = preset("course", 1, 10, (28, 28))
    assert mnist.layers[0].args["in_channels"] == 1
    assert mnist.layers[7].args == {"in_features": 576, "out_features": 64}
    odict = preset("course_odict")
    assert [x.name for x in odict.layers][:2] == ["conv1", "pool1"]
    assert odict.layers[7].args == {"in_features": 1024, "out_features": 128}
    assert "(full_connect2): Linear(in_features=128, out_features=10, bias=True)" in str(build_model(odict))
    assert preset("linear", 3, 7).layers[-1].args == {"in_features": 3072, "out_features": 7}
    relu = preset("course_relu")
    assert [x.kind for x in relu.layers][:3] == ["Conv2d", "ReLU", "MaxPool2d"]
    for name in PRESETS:
        for shape, classes in ((CIFAR, 10), (MNIST, 10), ((3, 64, 48), 4)):
            spec = preset(name, shape[0], classes, shape[1:])
            out = build_model(spec).eval()(torch.zeros((2, *shape)))
            assert out.shape == (2, classes), (name, shape)


def test_preset_errors():
    with pytest.raises(CourseError) as e:
        preset("nope")
    assert e.value.code == "model.preset_unknown"
    with pytest.raises(CourseError) as e:
        preset("course", 3, 10, (4, 4))
    assert e.value.code == "model.preset_too_small"


def test_linear_in_error_names_layer_expected_and_derivation():
    bad = _with(course_cnn(), 7, in_features=4096)
    with pytest.raises(CourseError) as e:
        summarize(bad, CIFAR)
    assert e.value.code == "model.linear_in"
    assert e.value.params == {"index": 7, "layer": "Linear", "expected": 1024, "got": 4096, "derivation": "64×4×4"}
    assert str(e.value) == "layer (7) Linear expects in_features = 1024 = 64×4×4, got 4096"
    assert fix_spec(bad, CIFAR) == course_cnn()


def test_second_linear_error_derivation_is_the_number():
    with pytest.raises(CourseError) as e:
        check_spec(_with(course_cnn(), 8, in_features=32), CIFAR)
    assert (e.value.code, e.value.params["index"], e.value.params["derivation"]) == ("model.linear_in", 8, "64")


@pytest.mark.parametrize("spec, code, index", [
    (_with(course_cnn(), 0, in_channels=1), "model.conv_in", 0),
    (_with(course_cnn(), 2, in_channels=64), "model.conv_in", 2),
    (_without(course_cnn(), 6), "model.needs_flatten", 6),
    (_with(course_cnn(), 4, kernel_size=40, padding=0), "model.kernel_too_big", 4),
    (_with(course_cnn(), 5, kernel_size=9), "model.kernel_too_big", 5),
    (_with(course_cnn(), 1, padding=2), "model.pool_padding", 1),
    (_with(course_cnn(), 2, out_channels=0), "model.bad_value", 2),
    (_with(course_cnn(), 4, kernel_size=-3), "model.bad_value", 4),
    (_with(course_cnn(), 8, out_features=0), "model.bad_value", 8),
    (_with(course_cnn(), 0, stride=1.5), "model.bad_value", 0),
    (ModelSpec(course_cnn().layers + (LayerSpec("Conv2d", {"in_channels": 10, "out_channels": 3, "kernel_size": 1}),)),
     "model.needs_image", 9),
    (ModelSpec(course_cnn().layers[:1] + (LayerSpec("BatchNorm2d", {"num_features": 16}),)), "model.bn_features", 1),
    (ModelSpec(course_cnn().layers[:1] + (LayerSpec("Dropout", {"p": 1.5}),)), "model.dropout_p", 1),
    (ModelSpec(course_cnn().layers[:1] + (LayerSpec("ReLU", {"alpha": 1}),)), "model.unknown_arg", 1),
    (ModelSpec(course_cnn().layers[:1] + (LayerSpec("MaxPool2d", {"kernel_size": 2, "return_indices": True}),)),
     "model.unknown_arg", 1),
    (_with(course_cnn(), 2, stride=None), "model.bad_value", 2),
])
def test_invalid_specs_raise_with_the_right_index(spec, code, index):
    with pytest.raises(CourseError) as e:
        summarize(spec, CIFAR)
    assert e.value.code == code
    assert e.value.params["index"] == index
    rows, err = check_partial(spec, CIFAR)
    assert err is not None and err.code == code and len(rows) == index


def test_arguments_left_out_are_torchs_defaults():
    spec = ModelSpec((LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 6, "kernel_size": 3}),
                      LayerSpec("MaxPool2d", {"kernel_size": 2}), LayerSpec("Dropout"), LayerSpec("Flatten"),
                      LayerSpec("Linear", {"in_features": 6 * 15 * 15, "out_features": 10})))
    assert [r.output_shape for r in check_spec(spec, CIFAR)] == [(6, 30, 30), (6, 15, 15), (6, 15, 15), (1350,), (10,)]
    assert build_model(spec)(torch.zeros(1, *CIFAR)).shape == (1, 10)
    with pytest.raises(CourseError) as e:
        check_spec(ModelSpec((LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 6}),)), CIFAR)
    assert (e.value.code, e.value.params["index"], e.value.params["arg"]) == ("model.missing_arg", 0, "kernel_size")


def test_empty_and_unknown_and_bad_input():
    for spec, shape, code in [(ModelSpec(()), CIFAR, "model.empty"),
                              (ModelSpec((LayerSpec("Conv3d"),)), CIFAR, "model.unknown_kind"),
                              (course_cnn(), (0, 32, 32), "model.bad_input"),
                              (ModelSpec((LayerSpec("ReLU"),) * 65), CIFAR, "model.too_many_layers")]:
        with pytest.raises(CourseError) as e:
            summarize(spec, shape)
        assert e.value.code == code


def test_parameter_cap_is_checked_before_allocating(monkeypatch):
    huge = ModelSpec((LayerSpec("Flatten"), LayerSpec("Linear", {"in_features": 3072, "out_features": 100_000})))
    monkeypatch.setattr(nn.Linear, "__init__", lambda *a, **k: pytest.fail("allocated"))
    with pytest.raises(CourseError) as e:
        summarize(huge, CIFAR)
    assert e.value.code == "model.too_big"
    assert 3072 * 100_000 > MAX_PARAMETERS


def test_activation_cap():
    wide = ModelSpec((LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 20_000, "kernel_size": 1}),))
    with pytest.raises(CourseError) as e:
        check_spec(wide, CIFAR)
    assert e.value.code == "model.too_big_activation"


def test_fix_inserts_flatten_and_sets_sizes():
    broken = _with(_with(_without(course_cnn(), 6), 0, in_channels=1), 6, in_features=5)
    fixed = fix_spec(broken, CIFAR)
    assert fixed == course_cnn()
    named = ModelSpec(tuple(x for x in preset("course_odict").layers if x.kind != "Flatten"))
    fixed = fix_spec(named, CIFAR)
    assert fixed is not None and [x.name for x in fixed.layers][6] == "flatten"
    assert fix_spec(_with(course_cnn(), 4, kernel_size=40, padding=0), CIFAR) is None
    assert fix_spec(course_cnn(), CIFAR) == course_cnn()


def test_json_round_trip():
    for name in PRESETS:
        spec = preset(name, 1, 7, (28, 28))
        again = ModelSpec.from_json(spec.to_json())
        assert again == spec
        assert str(build_model(again)) == str(build_model(spec))


def test_padding_table_uses_the_size_formula():
    rows = padding_table(32, 5, 1)
    assert [(p, out) for p, out, _ in rows] == [(0, 28), (1, 30), (2, 32), (3, 34), (4, 36)]
    assert all(out == conv_output_size(32, 5, 1, p) for p, out, _ in rows)
    assert [f for _, _, f in rows] == [size_formula(32, 5, 1, p) for p, _, _ in rows]


def test_build_model_seeded_is_reproducible_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = build_model_seeded(course_cnn(), 0), build_model_seeded(course_cnn(), 0)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_layer_outputs_and_channel_grid():
    model = build_model_seeded(course_cnn(), 0)
    outs = layer_outputs(model, torch.rand(3, 32, 32))
    assert [tuple(o.shape) for _, _, o in outs] == [r.output_shape for r in summarize(course_cnn(), CIFAR).rows]
    grid = channel_grid(outs[0][2], max_channels=8)
    assert grid.shape == (8, 32, 32) and grid.dtype == torch.uint8
    assert int(grid.amax()) == 255 or int(grid.amin()) == int(grid.amax())
    with pytest.raises(CourseError):
        channel_grid(outs[-1][2])


def test_decode_image(tmp_path):
    from io import BytesIO

    from PIL import Image
    buf = BytesIO()
    Image.new("RGBA", (50, 40), (255, 0, 0, 128)).save(buf, format="PNG")
    x = decode_image(buf.getvalue(), 3, (32, 32))
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8 and int(x[0].float().mean()) == 255
    assert decode_image(buf.getvalue(), 1, (28, 28)).shape == (1, 28, 28)
    for data, code in [(b"not an image", "image.not_image"), (b"x" * (21 << 20), "image.too_big")]:
        with pytest.raises(CourseError) as e:
            decode_image(data, 3, (32, 32))
        assert e.value.code == code


# Random valid specs: the arithmetic must equal what forward hooks see in PyTorch.
@st.composite
def valid_specs(draw):
    c, h, w = draw(st.integers(1, 4)), draw(st.integers(4, 24)), draw(st.integers(4, 24))
    shape = (c, h, w)
    layers = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "BatchNorm2d", "Tanh"]))
        ch, hh, ww = shape
        if kind == "Conv2d":
            k, s, p = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(0, 2))
            if hh + 2 * p < k or ww + 2 * p < k:
                continue
            out = draw(st.integers(1, 6))
            args = {"in_channels": ch, "out_channels": out, "kernel_size": k, "stride": s, "padding": p}
            args = {a: v for a, v in args.items() if {"stride": 1, "padding": 0}.get(a) != v}  # torch's defaults left out
            layers.append(LayerSpec(kind, args))
            shape = (out, conv_output_size(hh, k, s, p), conv_output_size(ww, k, s, p))
        elif kind in ("MaxPool2d", "AvgPool2d"):
            k = draw(st.integers(1, 3))
            ceil = draw(st.booleans())
            if hh < k or ww < k:
                continue
            layers.append(LayerSpec(kind, {"kernel_size": k, "ceil_mode": ceil}))
            shape = (ch, conv_output_size(hh, k, k, 0, 1, ceil), conv_output_size(ww, k, k, 0, 1, ceil))
        elif kind == "BatchNorm2d":
            layers.append(LayerSpec(kind, {"num_features": ch}))
        else:
            layers.append(LayerSpec(kind))
    layers.append(LayerSpec("Flatten"))
    flat = shape[0] * shape[1] * shape[2]
    hidden = draw(st.integers(1, 8))
    layers += [LayerSpec("Linear", {"in_features": flat, "out_features": hidden}),
               LayerSpec(draw(st.sampled_from(["ReLU", "Sigmoid", "LeakyReLU", "Dropout"]))),
               LayerSpec("Linear", {"in_features": hidden, "out_features": draw(st.integers(1, 5))})]
    return ModelSpec(tuple(layers)), (c, h, w)


@settings(max_examples=40, deadline=None)
@given(valid_specs())
def test_summary_equals_forward_hooks(case):
    spec, shape = case
    model = build_model(spec).eval()
    seen = []
    for m in model:
        m.register_forward_hook(lambda mod, i, o: seen.append(tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.rand((2, *shape)))
    s = summarize(spec, shape)
    assert [r.output_shape for r in s.rows] == seen
    assert [r.output_shape for r in check_spec(spec, shape)] == seen
    assert s.total_params == count_parameters(model)
    assert [r.params for r in s.rows] == [count_parameters(m) for m in model]


def test_every_kind_builds():
    assert set(LAYER_KINDS) >= {"Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "Sigmoid", "Tanh", "LeakyReLU",
                                "Dropout", "BatchNorm2d", "Flatten", "Linear"}
