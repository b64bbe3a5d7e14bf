"""Command line: `python -m dl_core train ...` (the same engine as the Train page), `python -m dl_core devices`
and `python -m dl_core notebook ...` (the whole course as a Jupyter notebook).

    python -m dl_core train --dataset shapes10 --epochs 2 --batch-size 64 --lr 0.01 --device auto --out model.pth
    python -m dl_core notebook --lang en --out course.ipynb --images 5000 --epochs 3
"""
from __future__ import annotations

import argparse
import shutil
import sys
from typing import TYPE_CHECKING, Any

from dl_core.datasets import DATASETS
from dl_core.errors import CourseError
from dl_core.models import PRESETS

if TYPE_CHECKING:
    from dl_core.training import StartEvent, TrainConfig  # imported lazily below: `--help` stays fast

DATASET_NAMES = tuple(DATASETS)
PRESET_NAMES = PRESETS


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dl_core", description="Torch Classroom from the terminal.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tr = sub.add_parser("train", help="train a network and write a checkpoint",
                        description="Train with the course's loop (fast engine) and save a Torch Classroom checkpoint.")
    tr.add_argument("--dataset", default="shapes10", choices=DATASET_NAMES)
    tr.add_argument("--model", default="course", choices=PRESET_NAMES, help="network preset (default: the course's CNN)")
    tr.add_argument("--epochs", type=_whole_number, default=10)
    tr.add_argument("--batch-size", type=_whole_number, default=64)
    tr.add_argument("--lr", type=float, default=0.01)
    tr.add_argument("--optimizer", default="sgd", choices=("sgd", "sgd_momentum", "adam"))
    tr.add_argument("--weight-decay", type=float, default=0.0)
    tr.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    tr.add_argument("--seed", type=_whole_number, default=0)
    tr.add_argument("--train-subset", type=_whole_number, default=None, help="use only the first N training images")
    tr.add_argument("--test-subset", type=_whole_number, default=None, help="use only the first N test images")
    tr.add_argument("--augment", action="store_true", help="random crop (padding 4) + horizontal flip")
    tr.add_argument("--normalize", action="store_true", help="Normalize([0.5]*C, [0.5]*C) after ToTensor")
    tr.add_argument("--log-every", type=_whole_number, default=100, help="print the train loss every N steps")
    tr.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds")
    tr.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                    help="auto: time the candidates (precision × memory layout) here and use the fastest")
    tr.add_argument("--probe-every", type=_whole_number, default=0,
                    help="live accuracy every N steps (default 0: about 10 times per epoch)")
    tr.add_argument("--probe-images", type=_whole_number, default=500,
                    help="images each live accuracy check tests (the first N test images; 0: none)")
    tr.add_argument("--threads", type=_whole_number, default=None, help="torch threads (default: torch's choice)")
    tr.add_argument("--tensorboard", default=None, metavar="LOGDIR",
                    help="also write train_loss / test_loss / test_accuracy scalars to LOGDIR")
    tr.add_argument("--out", default="model.pth", help="checkpoint path (default: model.pth)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")

    sub.add_parser("devices", help="what this machine has and what training would use")

    nb = sub.add_parser("notebook", help="write the whole course as a Jupyter notebook (.ipynb)",
                        description="Every step of the course in order, runnable offline (built-in Shapes-10).")
    nb.add_argument("--lang", default="zh", choices=("zh", "en"), help="language of the explanations")
    nb.add_argument("--out", default="course.ipynb", help="notebook path (default: course.ipynb)")
    nb.add_argument("--dataset", default="shapes10-full", choices=("shapes10", "shapes10-full"),
                    help="the built-in dataset it trains on (default: shapes10-full)")
    nb.add_argument("--images", type=_whole_number, default=None,
                    help="train on the first N training images (default: 20000)")
    nb.add_argument("--epochs", type=_whole_number, default=None, help="training epochs (default: 3)")
    nb.add_argument("--test-images", type=_whole_number, default=None,
                    help="test on the first N test images (default: 2000)")
    return parser


def _bar(fraction: float, width: int) -> str:
    filled = int(round(fraction * width))
    return "█" * filled + "·" * (width - filled)


def _fmt_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


def describe_tuning(event: StartEvent) -> str:
    """One line: the setting used and why ('measured in 0.8 s: fp32 + channels_last 1,210 img/s; fp32 1,010 img/s')."""
    measured = "; ".join(f"{label} {ips:,.0f} img/s" for label, ips in event.candidates)
    why = {
        "measured": f"measured now in {event.tuning_seconds:.1f} s: {measured}",
        "partial": f"measured now in {event.tuning_seconds:.1f} s, not every candidate fit the budget: {measured}",
        "memory": f"measured earlier in this process: {measured}",
        "disk": f"measured earlier on this machine: {measured}",
        "requested": "requested",
        "unmeasured": "not measured: one step takes longer than the tuning budget",
    }.get(event.tune_source, event.tune_source)
    line = f"setting: {event.tuned or event.precision} ({why})"
    if event.rejected:
        line += f"; refused (loss differs from fp32): {', '.join(event.rejected)}"
    return line


class _Console:
    """Prints a run's events on stderr: the device and tuning, a progress line, one line per epoch."""

    def __init__(self, epochs: int, quiet: bool) -> None:
        self.out, self.epochs, self.quiet = sys.stderr, epochs, quiet
        self.width = max(10, min(40, shutil.get_terminal_size((80, 20)).columns - 60))
        self.total_steps, self.probe = 1, ""
        self.done: Any = None  # the DoneEvent
        self.last_epoch: Any = None  # the last EpochEvent

    def show(self, event: Any) -> None:
        from dl_core.training import DoneEvent, EpochEvent, NoticeEvent, ProbeEvent, StartEvent, StepEvent

        out = self.out
        if isinstance(event, StartEvent):
            self.total_steps = event.steps_per_epoch * event.epochs
            print(f"device: {event.device} ({event.device_name}), {event.precision}, threads {event.threads}; "
                  f"{event.n_train} train / {event.n_test} test images, {event.steps_per_epoch} steps per epoch",
                  file=out, flush=True)
            print(describe_tuning(event), file=out, flush=True)
        elif isinstance(event, ProbeEvent):
            self.probe = f" acc {event.accuracy:.1%} ({event.images} test images)"
        elif isinstance(event, StepEvent) and not self.quiet:
            eta = event.seconds / max(event.progress, 1e-9) * (1 - event.progress)
            out.write(f"\repoch {event.epoch}/{self.epochs} {_bar(event.progress, self.width)} "
                      f"step {event.step}/{self.total_steps} loss {event.loss:.4f} "
                      f"{event.images_per_sec:,.0f} img/s ETA {_fmt_eta(eta)}{self.probe}")
            out.flush()
        elif isinstance(event, EpochEvent):
            self.last_epoch, self.probe = event, ""
            if not self.quiet:
                out.write("\n")
            print(f"epoch {event.epoch}: train loss {event.train_loss:.4f}, test loss {event.test_loss:.4f} "
                  f"(整体损失 {event.test_loss_total:.2f}), test accuracy {event.test_accuracy:.4f}, "
                  f"{event.seconds:.1f} s, {event.images_per_sec:,.0f} img/s", file=out, flush=True)
        elif isinstance(event, NoticeEvent):
            print(f"\nnotice: {event.code} {dict(event.params)}", file=out, flush=True)
        elif isinstance(event, DoneEvent):
            self.done = event


def _config(args: argparse.Namespace) -> TrainConfig:
    from dl_core.training import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                       weight_decay=args.weight_decay, device=args.device, seed=args.seed,
                       train_subset=args.train_subset, test_subset=args.test_subset, augment=args.augment,
                       normalize=args.normalize, log_every=args.log_every, time_limit=args.time_limit,
                       precision=args.precision, probe_every=args.probe_every, probe_images=args.probe_images)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from dl_core import checkpoint
    from dl_core.datasets import load_dataset
    from dl_core.jobs import History, TensorBoardLog
    from dl_core.models import preset
    from dl_core.students import run_summary
    from dl_core.training import preprocessing_for, seeded_model, train, tune_allocator

    tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = _config(args)
    out = sys.stderr
    print(f"loading {args.dataset} ...", file=out, flush=True)
    train_set = load_dataset(args.dataset, train=True)
    test_set = load_dataset(args.dataset, train=False)
    c, h, w = train_set.images.shape[1:]
    spec = preset(args.model, c, len(train_set.classes), (h, w))
    model = seeded_model(spec, config.seed)
    board = TensorBoardLog(args.tensorboard) if args.tensorboard else None
    console = _Console(config.epochs, args.quiet)
    history = History()
    try:
        for event in train(model, train_set, test_set, config):
            history.add(event)
            if board is not None:
                board.add(event)
            console.show(event)
    except KeyboardInterrupt:
        print("\ninterrupted", file=out)
        return 130
    finally:
        if board is not None:
            board.close()
    done = console.done
    assert done is not None
    print(f"\n{done.status} ({done.reason}) after {done.epochs_done} epochs, {done.steps} steps, "
          f"{done.seconds:.1f} s on {done.device}" + (f": {done.message}" if done.message else ""), file=out)
    if done.status == "failed" or done.epochs_done == 0:
        return 1
    summary = run_summary(config, history, done.epochs_done, done.test_accuracy, done.status)  # as the page writes
    model = model.cpu()
    path = checkpoint.save(args.out, model, spec, train_set.classes, preprocessing_for(train_set, config),
                           args.dataset, summary)
    print(f"saved {path}", file=out)
    print(f"test_accuracy={done.test_accuracy:.4f}")
    return 0


def cmd_devices(_: argparse.Namespace) -> int:
    from dl_core.devices import device_report

    r = device_report()
    print(f"torch {r.torch_version}")
    print(f"cuda: {r.cuda_available}" + (f" ({r.cuda_name}, {r.cuda_memory_gb} GiB, CUDA {r.cuda_version})"
                                           if r.cuda_available else ""))
    print(f"mps: {r.mps_available}")
    print(f"cpu: {r.cpu_cores} cores, torch uses {r.cpu_threads} threads")
    print(f"training uses: {r.chosen.type} ({r.chosen.name}, {r.chosen.reason})")
    return 0


def cmd_notebook(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dl_core.notebooks import COURSE_EPOCHS, COURSE_IMAGES, COURSE_TEST_IMAGES, course_notebook

    images = COURSE_IMAGES if args.images is None else args.images
    epochs = COURSE_EPOCHS if args.epochs is None else args.epochs
    test_images = COURSE_TEST_IMAGES if args.test_images is None else args.test_images
    data = course_notebook(args.lang, images=images, epochs=epochs, test_images=test_images, dataset=args.dataset)
    path = Path(args.out)
    path.write_bytes(data)
    print(f"wrote {path} ({len(data):,} bytes): {args.dataset}, {images} training images, {epochs} epochs, "
          f"{test_images} test images", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "devices": cmd_devices, "notebook": cmd_notebook}[args.command](args)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
