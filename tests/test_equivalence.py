"""The fast engine computes the course's maths: N steps of `train()` and N steps of the textbook loop agree.

In micrograd's spirit: same seed, same initial weights, same batches in the same order, fp32, no
augmentation. The course's loop is step 17 of ../shared/COURSE.md as the notes write it (a torchvision-
style dataset with ToTensor per PIL image, a DataLoader, `tudui.train()`, loss_fn, zero_grad → backward
→ step); the only liberty is the DataLoader's sampler, which replays the engine's shuffle so that both
loops see identical batches.
"""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader

from dl_core.datasets import TensorImageDataset
from dl_core.models import course_cnn
from dl_core.training import DoneEvent, StepEvent, TrainConfig, seeded_model, train


def images32(n: int, seed: int, classes: int = 10) -> TensorImageDataset:
    """3×32×32 uint8 images (what the course's CNN takes) with a class-dependent bright patch."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, classes, (n,), generator=g)
    images = torch.randint(0, 80, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    for c in range(classes):
        r, q = divmod(c, 4)
        images[targets == c, c % 3, r * 8:(r + 1) * 8, q * 8:(q + 1) * 8] += 150
    return TensorImageDataset(images, targets, [f"c{i}" for i in range(classes)], name="patches")


def course_loop(train_set: TensorImageDataset, config: TrainConfig) -> tuple[nn.Module, list[float]]:
    """COURSE.md step 17, as the students' notes write it. Returns the model and every step's loss."""
    train_data = train_set.view(torchvision.transforms.ToTensor())
    tudui = seeded_model(course_cnn(3, len(train_set.classes)), config.seed)
    loss_fn = nn.CrossEntropyLoss()
    learning_rate = config.lr
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(tudui.parameters(), lr=learning_rate)
    else:  # sgd_momentum, the first upgrade the Train page offers
        optimizer = torch.optim.SGD(tudui.parameters(), lr=learning_rate, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
    shuffle = torch.Generator().manual_seed(config.seed)  # replays the engine's shuffle=True
    losses = []
    for i in range(config.epochs):
        order = torch.randperm(len(train_data), generator=shuffle).tolist()
        train_dataloader = DataLoader(train_data, batch_size=config.batch_size, sampler=order)
        tudui.train()
        for data in train_dataloader:
            imgs, targets = data
            outputs = tudui(imgs)
            loss = loss_fn(outputs, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return tudui, losses


def engine(train_set: TensorImageDataset, config: TrainConfig) -> tuple[nn.Module, list[float]]:
    model = seeded_model(course_cnn(3, len(train_set.classes)), config.seed)
    events = list(train(model, train_set, train_set.subset(64), config))
    assert isinstance(events[-1], DoneEvent) and events[-1].status == "finished", events[-1]
    return model.to(memory_format=torch.contiguous_format), [e.loss for e in events if isinstance(e, StepEvent)]


@pytest.mark.parametrize("channels_last, optimizer, weight_decay, rtol, atol", [
    (False, "sgd", 0.0, 1e-5, 1e-6),  # the course's own layout: the same kernels, agreement to float rounding
    (True, "sgd", 0.0, 1e-4, 1e-5),  # the engine's fast layout: other kernels, the same maths
    (False, "sgd_momentum", 0.001, 1e-5, 1e-6),
])
def test_engine_steps_equal_the_course_loop(channels_last, optimizer, weight_decay, rtol, atol):
    train_set = images32(80, seed=0)  # 80 / 16: 5 steps per epoch, the last batch full
    config = TrainConfig(epochs=3, batch_size=16, lr=0.01, optimizer=optimizer, weight_decay=weight_decay, seed=3,
                         precision="fp32", channels_last=channels_last, augment=False, normalize=False, log_every=1)
    course_model, course_losses = course_loop(train_set, config)
    engine_model, engine_losses = engine(train_set, config)
    assert len(engine_losses) == len(course_losses) == 15
    assert engine_losses == pytest.approx(course_losses, rel=rtol, abs=atol)
    course_params = dict(course_model.named_parameters())
    moved = 0
    for name, p in engine_model.named_parameters():
        assert torch.allclose(p, course_params[name], rtol=rtol, atol=atol), name
        moved += int(not torch.equal(p, seeded_model(course_cnn(3, 10), 3).state_dict()[name]))
    assert moved == len(course_params)  # every parameter was trained: the comparison is not vacuous


def test_uneven_last_batch_is_the_course_drop_last_false():
    """70 images, batch 16: the course's DataLoader ends each epoch with a batch of 6; so does the engine."""
    train_set = images32(70, seed=1)
    config = TrainConfig(epochs=2, batch_size=16, lr=0.02, seed=5, precision="fp32", channels_last=False,
                         log_every=1, probe_images=0)
    course_model, course_losses = course_loop(train_set, config)
    engine_model, engine_losses = engine(train_set, config)
    assert len(engine_losses) == len(course_losses) == 10
    for (name, p), q in zip(engine_model.named_parameters(), course_model.parameters()):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-6), name
