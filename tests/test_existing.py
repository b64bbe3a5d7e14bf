"""VGG16 and the course's three modifications: counts checked against real torchvision models."""
from __future__ import annotations

import pytest
import torchvision
from torch import nn

from dl_core.errors import CourseError
from dl_core.existing import (
    MODIFICATIONS, freeze_features, load_pretrained, modification_diff, modify, module_tree, pretrained_available,
    pretrained_path, vgg16,
)
from dl_core.models import count_parameters

VGG16_PARAMS = 138_357_544


def test_vgg16_on_meta_has_torchvisions_count_and_tree():
    tree = module_tree(vgg16())
    assert tree.params == VGG16_PARAMS
    assert [(c.name, c.params) for c in tree.children] == [
        ("features", 14_714_688), ("avgpool", 0), ("classifier", 123_642_856)]
    assert tree.children[0].children[0].line == "3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)"


@pytest.fixture(scope="module")
def real_vgg_counts():
    """The three modifications done exactly as the course writes them, on a real (CPU) VGG16."""
    counts = {}
    for name in MODIFICATIONS:
        model = torchvision.models.vgg16(weights=None)
        if name == "add_linear":
            model.add_module("add_linear", nn.Linear(1000, 10))
        elif name == "classifier_add":
            model.classifier.add_module("7", nn.Linear(1000, 10))
        else:
            model.classifier[6] = nn.Linear(4096, 10)
        counts[name] = (count_parameters(model), str(model))
        del model
    return counts


def test_modification_counts_match_torchvision(real_vgg_counts):
    for name in MODIFICATIONS:
        d = modification_diff(name)
        assert d.params_before == VGG16_PARAMS
        assert d.params_after == real_vgg_counts[name][0]
        assert str(modify(vgg16(), name)) == real_vgg_counts[name][1]
    assert modification_diff("add_linear").params_change == 10_010
    assert modification_diff("classifier_replace").params_after == 134_301_514


def test_modification_diffs_and_outputs():
    add = modification_diff("add_linear")
    assert "+  (add_linear): Linear(in_features=1000, out_features=10, bias=True)" in add.diff
    assert add.output_after == (1, 1000)  # VGG's forward never calls the appended module
    assert modification_diff("classifier_add").output_after == (1, 10)
    rep = modification_diff("classifier_replace")
    assert "-    (6): Linear(in_features=4096, out_features=1000, bias=True)" in rep.diff
    assert "+    (6): Linear(in_features=4096, out_features=10, bias=True)" in rep.diff
    assert rep.output_after == (1, 10)


def test_freezing_features():
    r = freeze_features(modify(vgg16(), "classifier_replace"))
    assert (r.total, r.frozen, r.trainable) == (134_301_514, 14_714_688, 119_586_826)


def test_unknown_modification():
    with pytest.raises(CourseError) as e:
        modify(vgg16(), "nope")
    assert e.value.code == "existing.unknown_modification"


def test_pretrained_weights_never_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torch.hub
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    assert pretrained_path().is_relative_to(tmp_path)
    assert not pretrained_available()
    with pytest.raises(CourseError) as e:
        load_pretrained()
    assert e.value.code == "existing.no_weights"
    pretrained_path().parent.mkdir(parents=True)
    pretrained_path().write_bytes(b"garbage")
    with pytest.raises(CourseError) as e:
        load_pretrained()
    assert e.value.code == "existing.bad_weights"
