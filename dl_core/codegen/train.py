"""Code for the Train page: the course's train.py (step 17–18) for exactly the settings on the page.

One runnable file in the notes' shape: train_data / test_data, DataLoader, class Tudui, loss_fn,
optimizer, total_train_step, writer (SummaryWriter, tags train_loss / test_loss / test_accuracy),
model.train() / model.eval() + torch.no_grad(), 整体损失 and accuracy, a checkpoint per epoch.
"""
from __future__ import annotations

from dl_core.codegen.model import layer_code
from dl_core.models import ModelSpec
from dl_core.training import CROP_PADDING, TrainConfig

TORCHVISION = {"cifar10": "CIFAR10", "mnist": "MNIST", "fashionmnist": "FashionMNIST"}

_TEXT = {
    "zh": {
        "device": "# 定义训练的设备（课程第 18 步：有 GPU 就用 GPU）",
        "data": "# 准备数据集",
        "len": "训练数据集的长度为：{}",
        "len_test": "测试数据集的长度为：{}",
        "loader": "# 利用 DataLoader 来加载数据集",
        "model": "# 创建网络模型",
        "loss": "# 损失函数",
        "optim": "# 优化器",
        "params": "# 设置训练网络的一些参数",
        "writer": "# 添加 tensorboard",
        "epoch_start": "-------第 {} 轮训练开始-------",
        "train": "    # 训练步骤开始",
        "step": "训练次数：{}，Loss：{}",
        "test": "    # 测试步骤开始",
        "total_loss": "整体测试集上的Loss：{}",
        "total_acc": "整体测试集上的正确率：{}",
        "saved": "模型已保存",
        "zero_grad": "  # 梯度清零：不清零，梯度会累加",
    },
    "en": {
        "device": "# The device to train on (course step 18: the GPU when there is one)",
        "data": "# Prepare the datasets",
        "len": "train_data size: {}",
        "len_test": "test_data size: {}",
        "loader": "# Load the datasets with DataLoader",
        "model": "# Create the network",
        "loss": "# Loss function",
        "optim": "# Optimizer",
        "params": "# Training counters and settings",
        "writer": "# TensorBoard",
        "epoch_start": "------- epoch {} -------",
        "train": "    # Training",
        "step": "total_train_step: {}, Loss: {}",
        "test": "    # Testing",
        "total_loss": "total test loss (整体损失): {}",
        "total_acc": "total test accuracy: {}",
        "saved": "model saved",
        "zero_grad": "  # zero the gradients: otherwise they add up",
    },
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


def train_code(spec: ModelSpec, config: TrainConfig, dataset: str = "cifar10",
               input_shape: tuple[int, int, int] = (3, 32, 32), tensorboard: bool = True, lang: str = "zh") -> str:
    """The course's train.py for `spec` trained with `config` on `dataset` (runnable as it is)."""
    tx = _TEXT.get(lang, _TEXT["en"])
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
        data = ("# Shapes-10 and your own images come from the dashboard's dl_core (torchvision-style datasets)\n"
                f'train_data = load_dataset("{dataset}", train=True).view({train_tf})\n'
                f'test_data = load_dataset("{dataset}", train=False).view({test_tf})')
        imports = "from dl_core.datasets import load_dataset\n"
    if config.train_subset is not None:
        data += f"\ntrain_data = Subset(train_data, range(min({config.train_subset}, len(train_data))))"
    if config.test_subset is not None:
        data += f"\ntest_data = Subset(test_data, range(min({config.test_subset}, len(test_data))))"
    layers = "\n".join(f"            {layer_code(layer)}," for layer in spec.layers)
    device = {"auto": '"cuda" if torch.cuda.is_available() else "cpu"', "cpu": '"cpu"', "cuda": '"cuda"',
              "mps": '"mps"'}[config.device]
    w_open = 'writer = SummaryWriter("logs_train")\n' if tensorboard else ""
    w_step = '            writer.add_scalar("train_loss", loss.item(), total_train_step)\n' if tensorboard else ""
    w_test = ('    writer.add_scalar("test_loss", total_test_loss, total_test_step)\n'
              '    writer.add_scalar("test_accuracy", total_accuracy / test_data_size, total_test_step)\n'
              if tensorboard else "")
    w_close = "writer.close()\n" if tensorboard else ""
    w_import = "from torch.utils.tensorboard import SummaryWriter\n" if tensorboard else ""
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
start_time = time.time()
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

        optimizer.zero_grad(){tx["zero_grad"]}
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
