"""The layers lab in AppTest, both languages: stepping through the course example, presets,
bad input (message, last valid state kept) and every tab."""
import re

import pytest

from tests.conftest import open_link as conftest_open_link, assert_clean, new_app
from ui.i18n import catalog

PAGE = "app_pages/layers.py"


def label(key: str, lang: str) -> str:
    return catalog()[key][lang]


def grid_numbers(at, name: str) -> list[list[str]]:
    """The numbers in one of the page's HTML grids (data-grid='name'), row by row."""
    for md in at.markdown:
        if f"data-grid='{name}'" in md.value:
            rows = re.findall(r"<tr>(.*?)</tr>", md.value)
            return [re.findall(r"data-cell='[^']+'[^>]*>([^<]*)", row) for row in rows]
    raise AssertionError(f"grid {name} not on the page")


def markdown_text(at) -> str:
    return "\n".join(md.value for md in at.markdown)


def open_tab(at, name: str, lang: str):
    at.session_state["layers.tab"] = label(f"layers.tab.{name}", lang)
    return at.run()


@pytest.fixture
def at(lang):
    app = new_app(lang, PAGE)
    assert_clean(app)
    return app


def test_course_example_preloaded_and_stepped(at, lang):
    assert label("layers.title", lang) in [t.value for t in at.title]
    text = markdown_text(at)
    assert "1×1 + 2×2 + 0×1 + 0×0 + 1×1 + 2×0 + 1×2 + 2×1 + 1×0 = 10" in text
    assert grid_numbers(at, "conv-output")[0] == ["10", "?", "?"]
    at.button(key="layers.conv.go_next").click().run()
    assert_clean(at)
    assert at.session_state["layers.conv.step"] == 2
    assert grid_numbers(at, "conv-output")[0] == ["10", "12", "?"]
    at.slider(key="layers.conv.step").set_value(9).run()
    assert grid_numbers(at, "conv-output") == [["10", "12", "12"], ["18", "16", "16"], ["13", "9", "3"]]
    assert "= 3`" in markdown_text(at)
    at.button(key="layers.conv.go_prev").click().run()
    assert at.session_state["layers.conv.step"] == 8
    at.button(key="layers.conv.go_first").click().run()
    assert at.session_state["layers.conv.step"] == 1
    assert label("layers.conv.check_ok", lang) in [s.value for s in at.success]
    assert any("⌊(5 + 2×0 − 1×(3−1) − 1) / 1 + 1⌋ = ⌊3⌋ = 3" in c.value for c in at.code)


@pytest.mark.parametrize("case, expected", [
    ("stride2", [["10", "12"], ["13", "3"]]),
    ("padding1", [["1", "3", "4", "10", "8"], ["5", "10", "12", "12", "6"], ["7", "18", "16", "16", "8"],
                  ["11", "13", "9", "3", "4"], ["14", "13", "9", "7", "4"]]),
    ("stride1", [["10", "12", "12"], ["18", "16", "16"], ["13", "9", "3"]]),
])
def test_presets_reproduce_the_course(at, case, expected):
    at.button(key=f"layers.conv.preset.{case}").click().run()
    at.button(key="layers.conv.go_last").click().run()
    assert_clean(at)
    assert grid_numbers(at, "conv-output") == expected
    if case == "padding1":  # the zero padding is drawn around the 5×5 input
        padded = grid_numbers(at, "conv-input")
        assert len(padded) == 7 and padded[0] == ["0"] * 7


def test_uneven_stride_warns(at, lang):
    at.number_input(key="layers.conv.stride").set_value(3).run()
    assert_clean(at)
    assert len(at.warning) == 2  # 5 with k=3, stride 3: (5-3) % 3 = 2 left over, rows and columns
    at.number_input(key="layers.conv.stride").set_value(2).run()
    assert not at.warning  # (5-3) % 2 = 0: tiles evenly
    at.number_input(key="layers.grid.input.cols").set_value(6).run()
    assert len(at.warning) == 1  # columns only: (6-3) % 2 = 1 cell left over
    assert catalog()["layers.conv.uneven"][lang].format(axis=label("layers.conv.cols_word", lang), left=1) == \
        at.warning[0].value


def test_bad_settings_show_a_message_and_keep_the_last_valid_state(at, lang):
    at.button(key="layers.conv.preset.stride2").click().run()
    at.number_input(key="layers.conv.stride").set_value(0).run()
    assert_clean(at)
    assert [e.value for e in at.error] == [catalog()["error.arith.stride"][lang].format(stride=0)]
    at.button(key="layers.conv.go_last").click().run()
    assert grid_numbers(at, "conv-output") == [["10", "12"], ["13", "3"]]  # stride 2 kept
    at.number_input(key="layers.conv.stride").set_value(1).run()
    at.number_input(key="layers.conv.padding").set_value(-1).run()
    assert catalog()["error.arith.padding"][lang].format(padding=-1) in [e.value for e in at.error]
    at.number_input(key="layers.conv.padding").set_value(0).run()
    at.number_input(key="layers.conv.dilation").set_value(3).run()  # reaches 7 cells on a 5×5 input
    assert catalog()["error.arith.kernel_too_big"][lang].format(span=7, padded=5) in [e.value for e in at.error]
    assert not at.exception


def test_typed_grids_and_their_errors(at, lang):
    at.text_area(key="layers.grid.input_text").input("[[1, 2], [3, x]]")
    at.button(key="layers.grid.text_apply").click().run()
    assert_clean(at)
    assert at.error and label("layers.grid.input_name", lang) in at.error[0].value
    assert grid_numbers(at, "conv-output")[0][0] == "10"  # the course grid is still there
    at.text_area(key="layers.grid.input_text").input("[[1, 2, 3], [4, 5]]")
    at.button(key="layers.grid.text_apply").click().run()
    assert at.error[0].value == catalog()["error.grid.ragged"][lang].format(
        name=label("layers.grid.input_name", lang), row=2, got=2, want=3)
    at.text_area(key="layers.grid.input_text").input("1 2 3\n4 5 6\n7 8 9")
    at.text_area(key="layers.grid.kernel_text").input("[[1, 0], [0, 1]]")
    at.button(key="layers.grid.text_apply").click().run()
    assert not at.error
    at.button(key="layers.conv.go_last").click().run()
    assert grid_numbers(at, "conv-output") == [["6", "8"], ["12", "14"]]
    at.text_area(key="layers.grid.kernel_text").input("[[1, 1, 1, 1]]")
    at.text_area(key="layers.grid.input_text").input("[[1, 2, 3]]")
    at.button(key="layers.grid.text_apply").click().run()
    # a 1×4 kernel on a 1×3 input: a clear message, the last valid output stays
    assert catalog()["error.arith.kernel_too_big"][lang].format(span=4, padded=3) in [e.value for e in at.error]
    assert grid_numbers(at, "conv-output") == [["6", "8"], ["12", "14"]]


def test_pooling_tab_course_numbers(at, lang):
    open_tab(at, "pool", lang)
    assert_clean(at)
    at.button(key="layers.pool.go_last").click().run()
    assert grid_numbers(at, "pool-output") == [["2", "3"], ["5", "1"]]
    assert label("layers.pool.check_ok", lang) in [s.value for s in at.success]
    at.button(key="layers.pool.preset_floor").click().run()
    at.button(key="layers.pool.go_last").click().run()
    assert grid_numbers(at, "pool-output") == [["2"]]
    at.button(key="layers.pool.preset_ceil").click().run()
    at.button(key="layers.pool.go_first").click().run()
    at.button(key="layers.pool.go_next").click().run()
    assert "max(3, 1, 3, 1, 0, 0) = 3" in markdown_text(at)  # the window hangs off the edge
    at.number_input(key="layers.pool.padding").set_value(2).run()
    assert catalog()["error.arith.pool_padding"][lang].format(padding=2, kernel=3) in [e.value for e in at.error]
    at.button(key="layers.pool.go_last").click().run()
    assert grid_numbers(at, "pool-output") == [["2", "3"], ["5", "1"]]  # last valid kept


def test_play_advances_and_stops(at):
    at.button(key="layers.conv.play").click().run()
    assert at.session_state["layers.conv.playing"]
    assert at.session_state["layers.conv.step"] == 1
    at.run()  # what the timer does: the fragment runs again and moves one cell on
    assert at.session_state["layers.conv.step"] >= 2
    at.button(key="layers.conv.play").click().run()
    assert not at.session_state["layers.conv.playing"]


@pytest.mark.parametrize("tab", ["multi", "act", "flat", "img"])
def test_other_tabs_render_cleanly(at, lang, tab):
    open_tab(at, tab, lang)
    assert_clean(at)
    text = markdown_text(at)
    if tab == "multi":
        assert "output[0][0][0] = 10 + 3 + (-1) + 1 = 13" in text
    if tab == "flat":
        table = at.table[0].value
        assert [str(v) for v in table.iloc[:, 1]] == ["[64, 3, 32, 32]", "[64, 3072]", "[64, 10]"]
        assert "30,730" in list(table.iloc[:, 2])
        assert "[196608]" in at.error[0].value
    if tab == "img":
        assert "`[6, 3, 3, 3]`" in text
        assert len(at.image) > 0 if hasattr(at, "image") else True


def test_language_switch_keeps_the_tab_and_the_step(lang):
    other = "en" if lang == "zh" else "zh"
    at = new_app(lang, PAGE)
    open_tab(at, "pool", lang)
    at.button(key="layers.pool.go_last").click().run()
    at.session_state["lang"] = other
    at.run()
    assert_clean(at)
    assert at.session_state["layers.tab"] == label("layers.tab.pool", other)
    assert grid_numbers(at, "pool-output") == [["2", "3"], ["5", "1"]]


def _png_bytes() -> bytes:
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGBA", (40, 30), (200, 30, 30, 255)).save(buf, "PNG")
    return buf.getvalue()


def test_upload_a_picture_and_a_bad_file(at, lang):
    open_tab(at, "img", lang)
    at.segmented_control(key=f"layers.img.source.{lang}").set_value(label("layers.img.source.upload", lang)).run()
    assert_clean(at)
    at.file_uploader(key="layers.img.file").upload("broken.png", b"not a picture", "image/png").run()
    assert_clean(at)
    assert catalog()["error.image.not_image"][lang] in [e.value for e in at.error]  # the one image intake
    at.file_uploader(key="layers.img.file").upload("red.png", _png_bytes(), "image/png").run()
    assert_clean(at)
    assert not at.error
    assert "`[1, 6, 28, 38]`" in markdown_text(at)  # 30×40 RGBA → RGB, Conv2d(3, 6, 3): 28×38


# --- the page's link (issue 14): /layers?stride=2, hostile queries, widgets -> URL ----------------------

def open_link(lang: str, **query: str):
    """The app opened on the layers page with `query` in its URL (a teacher's link)."""
    return conftest_open_link(lang, PAGE, **query)

def torch_output(at) -> str:
    return next(c.value for c in at.code if c.value.startswith("F.conv2d(...) ="))


def test_a_link_with_stride_2_shows_the_course_output(lang):
    at = open_link(lang, stride="2")
    assert_clean(at)
    assert not at.warning
    assert at.number_input(key="layers.conv.stride").value == 2
    assert torch_output(at) == "F.conv2d(...) =\n[[10, 12], [13, 3]]"  # PyTorch's own answer, on the page
    assert grid_numbers(at, "conv-output") == [["10", "?"], ["?", "?"]]
    at.button(key="layers.conv.go_last").click().run()
    assert grid_numbers(at, "conv-output") == [["10", "12"], ["13", "3"]]
    assert at.query_params["stride"] == "2" and at.query_params["step"] == "4"  # the step shown is in the URL
    assert any(c.value.endswith("/layers?" + ("lang=en&" if lang == "en" else "") + "stride=2&step=4")
               for c in at.code)  # "Copy link"


def test_a_link_sets_grids_presets_steps_and_the_pooling_tab(lang):
    at = open_link(lang, input="1,2,3;4,5,6;7,8,9", kernel="1,0;0,1", step="4")
    assert_clean(at)
    assert grid_numbers(at, "conv-output") == [["6", "8"], ["12", "14"]]
    at = open_link(lang, preset="padding1", step="25")
    assert grid_numbers(at, "conv-output")[-1] == ["14", "13", "9", "7", "4"]
    assert at.query_params["padding"] == "1" and "preset" not in at.query_params  # written out in full
    at = open_link(lang, tab="pool", ceil_mode="0")
    assert_clean(at)
    assert at.session_state["layers.tab"] == label("layers.tab.pool", lang)
    assert grid_numbers(at, "pool-output") == [["2"]]  # MaxPool2d(3, ceil_mode=False)


HOSTILE_QUERIES = [
    {"stride": "-1"}, {"stride": "99999999999"}, {"input": "1,2;3"}, {"padding": "NaN"},
    {"input": "1," * 50_000 + "1"}, {"stride": "步长２"}, {"tab": "<script>alert(1)</script>"},
    {"stride": "2", "dilation": "4"}, {"preset": "stride2", "padding": "1"}, {"step": "10"},
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: ",".join(q)[:20])
def test_a_hostile_link_gives_a_message_and_the_defaults(lang, query):
    at = open_link(lang, **query)
    assert_clean(at)
    assert len(at.warning) == 1 and at.warning[0].value.startswith(label("link.bad", lang))
    assert torch_output(at) == "F.conv2d(...) =\n[[10, 12, 12], [18, 16, 16], [13, 9, 3]]"  # the course defaults
    assert at.number_input(key="layers.conv.stride").value == 1
    assert not set(query) & set(at.query_params)  # the URL no longer carries the bad value
    at.button(key="layers.conv.go_next").click().run()
    assert not at.warning and grid_numbers(at, "conv-output")[0] == ["10", "12", "?"]


def test_changing_a_widget_updates_the_url(at, lang):
    assert not {"stride", "padding", "step", "input"} & set(at.query_params)  # defaults: a short URL
    at.number_input(key="layers.conv.stride").set_value(2).run()
    assert at.query_params["stride"] == "2"
    at.number_input(key="layers.conv.padding").set_value(1).run()
    assert at.query_params["padding"] == "1"
    at.number_input(key="layers.conv.stride").set_value(0).run()  # refused: the URL keeps what is shown
    assert at.query_params["stride"] == "2"
    at.number_input(key="layers.conv.stride").set_value(1).run()
    assert "stride" not in at.query_params
    at.text_area(key="layers.grid.input_text").input("1 2 3\n4 5 6\n7 8 9")
    at.button(key="layers.grid.text_apply").click().run()
    assert at.query_params["input"] == "1,2,3;4,5,6;7,8,9"
    open_tab(at, "pool", lang)
    at.toggle(key="layers.pool.ceil_mode").set_value(False).run()
    assert at.query_params["tab"] == "pool" and at.query_params["ceil_mode"] == "0"
    if lang == "en":
        assert at.query_params["lang"] == "en"  # the language stays in the URL


def test_a_link_survives_a_page_switch(lang):
    at = open_link(lang, stride="2", padding="1")
    open_tab(at, "pool", lang)
    at.switch_page("app_pages/home.py").run()
    for name in ("stride", "padding", "tab"):  # a browser's page switch drops the query string
        at.query_params.pop(name, None)
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert at.session_state["layers.tab"] == label("layers.tab.pool", lang)  # the last settings are put back
    assert at.query_params["stride"] == "2" and at.query_params["tab"] == "pool"
    open_tab(at, "conv", lang)
    assert not at.warning
    assert at.number_input(key="layers.conv.stride").value == 2
    assert at.number_input(key="layers.conv.padding").value == 1
