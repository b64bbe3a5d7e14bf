"""Code for the Train page: the course's train.py (step 17–18) for exactly the settings on the page.

One runnable file in the notes' shape: train_data / test_data, DataLoader, class Tudui, loss_fn,
optimizer, total_train_step, writer (SummaryWriter, tags train_loss / test_loss / test_accuracy),
model.train() / model.eval() + torch.no_grad(), 整体损失 and accuracy, a checkpoint per epoch.
"""
from __future__ import annotations

from dl_core.codegen.model import layer_code
from dl_core.i18n import text
from dl_core.models import ModelSpec
from dl_core.training import CROP_PADDING, TrainConfig

TORCHVISION = {"cifar10": "CIFAR10", "mnist": "MNIST", "fashionmnist": "FashionMNIST"}


def _comments(lang: str) -> dict[str, str]:
    """The generated file's comments and printed labels, from locales/train.json (`code.train.*`)."""
    return {
        "device": text("code.train.device", lang), "data": text("code.train.data", lang),
        "len": text("code.train.len", lang), "len_test": text("code.train.len_test", lang),
        "loader": text("code.train.loader", lang), "model": text("code.train.model", lang),
        "loss": text("code.train.loss", lang), "optim": text("code.train.optim", lang),
        "params": text("code.train.params", lang),
        "epoch_start": text("code.train.epoch_start", lang), "train": text("code.train.train", lang),
        "step": text("code.train.step", lang), "test": text("code.train.test", lang),
        "total_loss": text("code.train.total_loss", lang), "total_acc": text("code.train.total_acc", lang),
        "saved": text("code.train.saved", lang), "zero_grad": text("code.train.zero_grad", lang),
    }


def _transform(config: TrainConfig, channels: int, size: tuple[int, int], train: bool) -> str:
    steps = []
    if train and config.augment:
        steps += [f"v2.RandomCrop({tuple(size)!r}, padding={CROP_PADDING})", "v2.RandomHorizontalFlip()"]
    steps += ["v2.ToImage()", "v2.ToDtype(torch.float32, scale=True)"]
    if config.normalize:
        steps.append(f"v2.Normalize({[0.5] * channels}, {[0.5] * channels})")
    return "v2.Compose([" + ", ".join(steps) + "])"


def _optimizer(config: TrainConfig) -> str:
    extra = f", weight_decay={config.weight_decay!r}" if config.weight_decay else ""
    if config.optimizer == "adam":
        return f"torch.optim.Adam(tudui.parameters(), lr=learning_rate{extra})"
    if config.optimizer == "sgd_momentum":
        return f"torch.optim.SGD(tudui.parameters(), lr=learning_rate, momentum={config.momentum!r}{extra})"
    return f"torch.optim.SGD(tudui.parameters(), lr=learning_rate{extra})"


def _data(config: TrainConfig, dataset: str, input_shape: tuple[int, int, int]) -> tuple[str, str]:
    """(the import line, the train_data / test_data lines): torchvision for its datasets, dl_core for the rest."""
    c, h, w = input_shape
    train_tf, test_tf = _transform(config, c, (h, w), True), _transform(config, c, (h, w), False)
    if dataset in TORCHVISION:
        cls = TORCHVISION[dataset]
        data = (f'train_data = torchvision.datasets.{cls}(root="./dataset", train=True, transform={train_tf},\n'
                f'                                        download=True)\n'
                f'test_data = torchvision.datasets.{cls}(root="./dataset", train=False, transform={test_tf},\n'
                f'                                       download=True)')
        imports = "import torchvision\n"
    else:
        data = ("# Shapes-10 and your own images: torchvision-style datasets from load_dataset (see above)\n"
                f'train_data = load_dataset("{dataset}", train=True).view({train_tf})\n'
                f'test_data = load_dataset("{dataset}", train=False).view({test_tf})')
        imports = "from dl_core.datasets import load_dataset\n"
    if config.train_subset is not None:
        data += f"\ntrain_data = Subset(train_data, range(min({config.train_subset}, len(train_data))))"
    if config.test_subset is not None:
        data += f"\ntest_data = Subset(test_data, range(min({config.test_subset}, len(test_data))))"
    return imports, data


def _writer(tensorboard: bool) -> dict[str, str]:
    """The SummaryWriter lines (the course's tags train_loss / test_loss / test_accuracy), or nothing."""
    if not tensorboard:
        return dict.fromkeys(("import", "open", "step", "test", "close"), "")
    return {"import": "from torch.utils.tensorboard import SummaryWriter\n",
            "open": 'writer = SummaryWriter("logs_train")\n',
            "step": '            writer.add_scalar("train_loss", loss.item(), total_train_step)\n',
            "test": ('    writer.add_scalar("test_loss", total_test_loss, total_test_step)\n'
                     '    writer.add_scalar("test_accuracy", total_accuracy / test_data_size, total_test_step)\n'),
            "close": "writer.close()\n"}


_DEVICES = {"auto": '"cuda" if torch.cuda.is_available() else "cpu"', "cpu": '"cpu"', "cuda": '"cuda"', "mps": '"mps"'}


def _setup(spec: ModelSpec, config: TrainConfig, dataset: str, input_shape: tuple[int, int, int],
           tx: dict[str, str], wr: dict[str, str]) -> str:  # ~60 lines: the course file's own text
    """From the imports to the optimizer and the counters: everything before the loop."""
    imports, data = _data(config, dataset, input_shape)
    layers = "\n".join(f"            {layer_code(layer)}," for layer in spec.layers)
    device = _DEVICES[config.device]
    w_import, w_open = wr["import"], wr["open"]
    return f'''import time

import torch
{imports}from torch import nn
from torch.utils.data import DataLoader, Subset
{w_import}from torchvision.transforms import v2

{tx["device"]}
device = torch.device({device})
torch.manual_seed({config.seed})

{tx["data"]}
{data}
train_data_size = len(train_data)
test_data_size = len(test_data)
print("{tx["len"]}".format(train_data_size))
print("{tx["len_test"]}".format(test_data_size))

{tx["loader"]}
train_dataloader = DataLoader(train_data, batch_size={config.batch_size}, shuffle=True)
test_dataloader = DataLoader(test_data, batch_size={config.batch_size})


{tx["model"]}
class Tudui(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
{layers}
        )

    def forward(self, x):
        x = self.model(x)
        return x


tudui = Tudui()
tudui = tudui.to(device)

{tx["loss"]}
loss_fn = nn.CrossEntropyLoss()
loss_fn = loss_fn.to(device)

{tx["optim"]}
learning_rate = {config.lr!r}
optimizer = {_optimizer(config)}

{tx["params"]}
total_train_step = 0
total_test_step = 0
epoch = {config.epochs}
{w_open}
'''


def _loop(config: TrainConfig, tx: dict[str, str], wr: dict[str, str]) -> str:
    """The course's epoch loop: train (model.train()), test (model.eval(), no_grad), save."""
    w_step, w_test, w_close = wr["step"], wr["test"], wr["close"]
    return f'''start_time = time.time()
for i in range(epoch):
    print("{tx["epoch_start"]}".format(i + 1))

    {tx["train"]}
    tudui.train()
    for data in train_dataloader:
        imgs, targets = data
        imgs = imgs.to(device)
        targets = targets.to(device)
        outputs = tudui(imgs)
        loss = loss_fn(outputs, targets)

        optimizer.zero_grad()  {tx["zero_grad"]}
        loss.backward()
        optimizer.step()

        total_train_step = total_train_step + 1
        if total_train_step % {config.log_every} == 0:
            print(time.time() - start_time)
            print("{tx["step"]}".format(total_train_step, loss.item()))
{w_step}
    {tx["test"]}
    tudui.eval()
    total_test_loss = 0
    total_accuracy = 0
    with torch.no_grad():
        for data in test_dataloader:
            imgs, targets = data
            imgs = imgs.to(device)
            targets = targets.to(device)
            outputs = tudui(imgs)
            loss = loss_fn(outputs, targets)
            total_test_loss = total_test_loss + loss.item()
            accuracy = (outputs.argmax(1) == targets).sum()
            total_accuracy = total_accuracy + accuracy.item()

    print("{tx["total_loss"]}".format(total_test_loss))
    print("{tx["total_acc"]}".format(total_accuracy / test_data_size))
{w_test}    total_test_step = total_test_step + 1

    torch.save(tudui.state_dict(), "tudui_{{}}.pth".format(i))
    print("{tx["saved"]}")

{w_close}'''


def train_code(spec: ModelSpec, config: TrainConfig, dataset: str = "cifar10",
               input_shape: tuple[int, int, int] = (3, 32, 32), tensorboard: bool = True, lang: str = "zh") -> str:
    """The course's train.py for `spec` trained with `config` on `dataset` (runnable as it is)."""
    tx, wr = _comments(lang), _writer(tensorboard)
    return _setup(spec, config, dataset, input_shape, tx, wr) + _loop(config, tx, wr)
