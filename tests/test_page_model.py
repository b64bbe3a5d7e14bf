"""AppTest of the builder page: build, break and fix the course network, in both languages."""
from __future__ import annotations

from dl_core.checkpoint import Checkpoint
from dl_core.models import build_model, course_cnn, preset
from tests.conftest import open_link, assert_clean, new_app

PAGE = "app_pages/model.py"


def _uid(at, index: int) -> int:
    return at.session_state["model.rows"][index][0]


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_course_network_is_the_default_and_the_current_model(lang):
    at = new_app(lang, PAGE)
    assert_clean(at)
    assert not at.error
    assert "145,578" in _texts(at.success) and "[64, 10]" in _texts(at.success)
    assert at.session_state["ws.spec"] == course_cnn()
    at.segmented_control(key="model.section").set_value("code").run()
    assert_clean(at)
    assert "Linear(in_features=1024, out_features=64, bias=True)" in _texts(at.code)
    assert any("class Tudui(nn.Module):" in str(c.value) and "torch.ones((64, 3, 32, 32))" in str(c.value)
               for c in at.code)


def test_break_linear_in_features_and_fix(lang):
    at = new_app(lang, PAGE)
    at.number_input(key=f"model.l{_uid(at, 7)}.Linear.in_features").set_value(4096).run()
    assert_clean(at)
    message = _texts(at.error)
    assert "(7)" in message and "1024 = 64×4×4" in message and "4096" in message
    if lang == "en":
        assert "Linear expects in_features = 1024 = 64×4×4, got 4096" in message
    assert at.session_state["ws.spec"] == course_cnn()  # the last valid network is kept
    at.button(key="model.fix").click().run()
    assert_clean(at)
    assert not at.error
    assert at.session_state["ws.spec"] == course_cnn()
    assert "145,578" in _texts(at.success)


def test_remove_flatten_then_fix_inserts_it(lang):
    at = new_app(lang, PAGE)
    at.button(key=f"model.l{_uid(at, 6)}.remove").click().run()
    assert_clean(at)
    assert "Flatten()" in _texts(at.error) and "64×4×4" in _texts(at.error)
    at.button(key="model.fix").click().run()
    assert not at.error
    assert at.session_state["ws.spec"] == course_cnn()


def test_bad_value_and_kernel_too_big_have_no_automatic_fix(lang):
    at = new_app(lang, PAGE)
    at.number_input(key=f"model.l{_uid(at, 2)}.Conv2d.out_channels").set_value(0).run()
    assert_clean(at)
    assert "out_channels" in _texts(at.error) and "(2)" in _texts(at.error)
    assert not [b for b in at.button if b.key == "model.fix"]
    at.number_input(key=f"model.l{_uid(at, 2)}.Conv2d.out_channels").set_value(32).run()
    assert not at.error
    at.number_input(key=f"model.l{_uid(at, 4)}.Conv2d.kernel_size").set_value(40).run()
    assert_clean(at)
    assert "(4)" in _texts(at.error)
    assert at.session_state["ws.spec"] == course_cnn()


def test_reorder_add_and_remove_layers(lang):
    at = new_app(lang, PAGE)
    at.selectbox(key="model.add_kind").set_value("ReLU")
    at.number_input(key="model.add_pos").set_value(1)
    at.button(key="model.add").click().run()
    assert_clean(at)
    assert [layer.kind for _, layer in at.session_state["model.rows"]][:3] == ["Conv2d", "ReLU", "MaxPool2d"]
    assert at.session_state["ws.spec"].layers[1].kind == "ReLU"
    at.button(key=f"model.l{_uid(at, 1)}.down").click().run()
    assert [layer.kind for _, layer in at.session_state["model.rows"]][:3] == ["Conv2d", "MaxPool2d", "ReLU"]
    at.button(key=f"model.l{_uid(at, 2)}.remove").click().run()
    assert at.session_state["ws.spec"] == course_cnn()
    # a new Linear after Flatten gets the in_features arriving there
    at.selectbox(key="model.add_kind").set_value("Linear")
    at.number_input(key="model.add_pos").set_value(7)
    at.button(key="model.add").click().run()
    assert at.session_state["model.rows"][7][1].args["in_features"] == 1024


def test_preset_follows_the_dataset(lang):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import APP
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["lang"] = lang
    at.session_state["ws.dataset"] = "mnist"
    at.run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert at.session_state["ws.spec"] == preset("course", 1, 10, (28, 28))
    at.selectbox(key="model.preset").set_value("course_odict")
    at.button(key="model.load_preset").click().run()
    assert_clean(at)
    spec = at.session_state["ws.spec"]
    assert spec.layers[0].name == "conv1" and spec.layers[7].args["in_features"] == 576
    at.segmented_control(key="model.section").set_value("code").run()
    assert "(full_connect1): Linear(in_features=576, out_features=128, bias=True)" in _texts(at.code)


def test_changing_a_trained_model_asks_first(lang):
    at = new_app(lang, PAGE)
    model = build_model(course_cnn())
    at.session_state["ws.trained"] = Checkpoint(spec=course_cnn(), state_dict=model.state_dict(), classes=list("0123456789"))
    at.number_input(key=f"model.l{_uid(at, 0)}.Conv2d.out_channels").set_value(16)
    at.number_input(key=f"model.l{_uid(at, 2)}.Conv2d.in_channels").set_value(16).run()
    assert_clean(at)
    assert at.warning and at.session_state["ws.spec"] == course_cnn()
    at.button(key="model.keep").click().run()
    assert at.session_state["ws.trained"] is not None
    assert at.session_state["model.rows"][0][1].args["out_channels"] == 32
    at.number_input(key=f"model.l{_uid(at, 8)}.Linear.out_features").set_value(5).run()
    at.button(key="model.discard").click().run()
    assert_clean(at)
    assert at.session_state["ws.trained"] is None
    assert at.session_state["ws.spec"].layers[8].args["out_features"] == 5


def test_vgg_modifications_and_freezing(lang):
    at = new_app(lang, PAGE)
    at.segmented_control(key="model.section").set_value("vgg").run()
    metrics = {m.value for m in at.metric}
    assert "138,357,544" in metrics
    at.radio(key="model.vgg_mod").set_value("classifier_replace").run()
    assert "134,301,514" in {m.value for m in at.metric}
    at.toggle(key="model.vgg_freeze").set_value(True).run()
    assert_clean(at)
    assert {"14,714,688", "119,586,826"} <= {m.value for m in at.metric}
    assert "vgg16.classifier[6] = nn.Linear(4096, 10)" in _texts(at.code)
    assert at.info  # offline: no pretrained weights on this machine, said clearly


def test_code_section_ordered_form(lang):
    at = new_app(lang, PAGE)
    at.segmented_control(key="model.section").set_value("code").run()
    at.toggle(key="model.ordered").set_value(True).run()
    assert_clean(at)
    code = _texts(at.code)
    assert "nn.Sequential(OrderedDict([" in code and "('layer0', nn.Conv2d(3, 32, 5, padding=2))," in code


def test_feature_maps_of_a_test_sample(lang):
    at = new_app(lang, PAGE)
    at.segmented_control(key="model.section").set_value("maps").run()
    assert_clean(at)
    at.toggle(key="model.maps_on").set_value(True).run()
    assert_clean(at)
    assert not at.error
    # input picture + 8 channels for each conv/pool layer + the 10 outputs as a bar chart
    assert len(at.get("image")) == 7
    assert any("(8) Linear" in str(m.value) for m in at.markdown)


def test_a_loaded_model_is_the_starting_point(lang):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import APP
    spec = preset("course_odict")
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["lang"] = lang
    at.session_state["ws.trained"] = Checkpoint(spec=spec, state_dict=build_model(spec).state_dict(),
                                                classes=list("0123456789"))
    at.run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert not at.warning  # nothing to confirm: the builder shows the loaded network
    assert at.session_state["ws.spec"] == spec and at.session_state["ws.trained"] is not None


def test_changing_a_layer_type(lang):
    at = new_app(lang, PAGE)
    at.selectbox(key=f"model.l{_uid(at, 1)}.kind").set_value("AvgPool2d").run()
    assert_clean(at)
    assert not at.error and at.session_state["ws.spec"].layers[1].kind == "AvgPool2d"
    assert "145,578" in _texts(at.success)
    at.selectbox(key=f"model.l{_uid(at, 7)}.kind").set_value("ReLU").run()
    assert_clean(at)
    assert "(8)" in _texts(at.error) and "1024" in _texts(at.error)


def test_a_cifar_network_on_mnist_is_fixed_for_one_channel(lang):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import APP
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["lang"] = lang
    at.session_state["ws.dataset"] = "mnist"
    at.session_state["ws.spec"] = course_cnn()
    at.run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert "(0)" in _texts(at.error) and "in_channels" in _texts(at.error)
    at.button(key="model.fix").click().run()
    assert_clean(at)
    assert at.session_state["ws.spec"] == preset("course", 1, 10, (28, 28))


def test_arguments_left_out_keep_torchs_defaults(lang):
    """Conv2d(3, 6, 3) has padding 0 (torch's default): the editor must not show the builder's padding 2."""
    from streamlit.testing.v1 import AppTest

    from dl_core.models import LayerSpec, ModelSpec
    from tests.conftest import APP
    spec = ModelSpec((LayerSpec("Conv2d", {"in_channels": 3, "out_channels": 6, "kernel_size": 3}),
                      LayerSpec("Flatten"), LayerSpec("Linear", {"in_features": 6 * 30 * 30, "out_features": 10})))
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["lang"] = lang
    at.session_state["ws.spec"] = spec
    at.run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert not at.error and at.session_state["ws.spec"] == spec
    assert at.number_input(key=f"model.l{_uid(at, 0)}.Conv2d.padding").value == 0


def test_a_broken_weights_file_in_the_cache_is_a_clear_message(lang, tmp_path, monkeypatch):
    import torch.hub

    from dl_core.existing import pretrained_path
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    pretrained_path().parent.mkdir(parents=True)
    pretrained_path().write_bytes(b"not a state dict")
    at = new_app(lang, PAGE)
    at.segmented_control(key="model.section").set_value("vgg").run()
    assert at.success and str(tmp_path) in _texts(at.success)
    at.button(key="model.vgg_load").click().run()
    assert_clean(at)
    assert "vgg16-397923af.pth" in _texts(at.error)


def test_feature_maps_of_the_trained_network(lang):
    at = new_app(lang, PAGE)
    at.session_state["ws.trained"] = Checkpoint(spec=course_cnn(), state_dict=build_model(course_cnn()).state_dict(),
                                                classes=[f"c{i}" for i in range(10)])
    at.segmented_control(key="model.section").set_value("maps").run()
    at.radio(key="model.maps_weights").set_value("trained")
    at.toggle(key="model.maps_on").set_value(True).run()
    assert_clean(at)
    assert not at.error and len(at.get("image")) == 7


def test_build_section_needs_no_heavy_javascript(lang):
    """Issue 12: Plotly's and the data grid's JavaScript kept every widget here a grey placeholder for seconds
    in a fresh browser; the build section draws its picture as SVG and its tables statically."""
    at = new_app(lang, PAGE)
    assert_clean(at)
    assert not at.get("plotly_chart") and not at.dataframe
    svg = next(m.value for m in at.markdown if m.value.startswith("<svg"))
    assert svg.count("<polygon") == 3 * 7 + 3  # 7 boxes of 3 faces (input, 3 × conv + pool), 3 flat bars
    assert "<title>(6) Flatten [64, 1024]</title>" in svg and "<title>(7) Linear [64, 64]</title>" in svg
    assert svg.count("<title>") == 10  # the input and the 9 layers
    assert len(at.table) == 2  # the layer summary and the padding table
    assert at.table[0].value.shape == (9, 6)



def test_dropout_and_avgpool_in_the_builder(lang):
    """Issue 13: a kind added as one registry entry is in the builder: added, edited, printed, coded, counted."""
    from dl_core.models import count_parameters
    at = new_app(lang, PAGE)
    at.selectbox(key="model.add_kind").set_value("Dropout")
    at.number_input(key="model.add_pos").set_value(8)
    at.button(key="model.add").click().run()
    assert_clean(at)
    assert at.session_state["ws.spec"].layers[8].kind == "Dropout" and "145,578" in _texts(at.success)
    at.number_input(key=f"model.l{_uid(at, 8)}.Dropout.p").set_value(0.2).run()
    assert at.session_state["ws.spec"].layers[8].args == {"p": 0.2}
    at.selectbox(key="model.add_kind").set_value("AvgPool2d")
    at.number_input(key="model.add_pos").set_value(1)
    at.button(key="model.add").click().run()
    assert_clean(at)
    assert "(8)" in _texts(at.error) and "256" in _texts(at.error)  # one pooling more: 64×2×2 reach the Linear
    at.button(key="model.fix").click().run()
    assert_clean(at)
    spec = at.session_state["ws.spec"]
    assert [x.kind for x in spec.layers][:3] == ["Conv2d", "AvgPool2d", "MaxPool2d"]
    assert spec.layers[8].args["in_features"] == 256
    assert f"{count_parameters(build_model(spec)):,}" in _texts(at.success)
    at.segmented_control(key="model.section").set_value("code").run()
    assert_clean(at)
    code = _texts(at.code)
    assert "(1): AvgPool2d(kernel_size=2, stride=2, padding=0)" in code
    assert "(9): Dropout(p=0.2, inplace=False)" in code
    assert "nn.AvgPool2d(2)," in code and "nn.Dropout(p=0.2)," in code


# ---- The network as a link (issue 14) ---------------------------------------------------------------------
def link_app(lang: str, **query: str):
    """The builder opened from a link: the query is in the URL before the first run."""
    return open_link(lang, PAGE, **query)

def _query(at, name: str):
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def test_a_builder_link_rebuilds_the_same_network(lang):
    from dl_core.models import count_parameters
    spec = preset("course_bn_dropout")
    at = link_app(lang, net=spec.to_text())
    assert_clean(at)
    assert not at.warning and not at.error
    assert at.session_state["ws.spec"] == spec
    params = f"{count_parameters(build_model(spec)):,}"
    assert params in _texts(at.success) and params in {m.value for m in at.metric}
    assert _query(at, "net") == spec.to_text()  # the URL keeps the network
    assert any("/model?" in c.value and f"net={spec.to_text()}" in c.value for c in at.code)  # "Copy link"
    at.run()  # a rerun keeps it (the link is applied once)
    assert at.session_state["ws.spec"] == spec


def test_the_url_follows_the_network(lang):
    at = new_app(lang, PAGE)
    assert _query(at, "net") == course_cnn().to_text()
    at.number_input(key=f"model.l{_uid(at, 8)}.Linear.out_features").set_value(5).run()
    assert _query(at, "net").endswith("linear_64_5")
    at.number_input(key=f"model.l{_uid(at, 7)}.Linear.in_features").set_value(4096).run()
    assert "linear_4096_64" in _query(at, "net")  # a broken network is in the URL too, as the student sees it
    again = link_app(lang, net=_query(at, "net"))
    assert_clean(again)
    assert not again.warning and "(7)" in _texts(again.error)  # shared as an exercise: red, with its fix
    assert [b for b in again.button if b.key == "model.fix"]


def test_a_hostile_link_is_a_message_and_the_defaults(lang):
    at = link_app(lang, net="<script>alert(1)</script>" + "relu-" * 30, input="3x99999x1", preset="vgg")
    assert_clean(at)
    assert at.warning and len(at.warning[0].value.splitlines()) >= 3  # each wrong parameter said
    assert at.session_state["ws.spec"] == course_cnn()  # the page's defaults
    assert "145,578" in _texts(at.success)
    at = link_app(lang, net="flatten-linear_999999_999999")
    assert at.warning and at.session_state["ws.spec"] == course_cnn()


def test_a_link_with_a_preset_or_for_other_pictures(lang):
    at = link_app(lang, preset="course_relu")
    assert_clean(at)
    assert at.session_state["ws.spec"] == preset("course_relu") and at.selectbox(key="model.preset").value == \
        "course_relu"
    mnist = preset("course", 1, 10, (28, 28))
    at = link_app(lang, net=mnist.to_text(), input="1x28x28")
    assert_clean(at)
    assert "1×28×28" in _texts(at.info) and "(0)" in _texts(at.error)  # this dataset's pictures are 3×32×32
    at.button(key="model.fix").click().run()
    assert at.session_state["ws.spec"] == course_cnn()
