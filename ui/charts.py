"""Plotly figures for training: live loss and accuracy, images/s, run overlays, confusion matrix, per class.

Every figure is a `go.Figure` built from numpy arrays (1–2 ms per redraw; Python lists cost 10× more)
and long series are thinned to at most MAX_POINTS, so the live charts can redraw every second.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dl_core.jobs import History
from ui.i18n import t

MAX_POINTS = 2000
HEIGHT = 300


def thin(x: Sequence[float], y: Sequence[float], max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """x, y as numpy arrays with at most `max_points` points (evenly strided, the last point kept)."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.size <= max_points:
        return xa, ya
    idx = np.unique(np.linspace(0, xa.size - 1, max_points).round().astype(np.int64))
    return xa[idx], ya[idx]


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    # The legend sits above the plot, under the title: below it, it covered the x axis title.
    fig.update_layout(title=dict(text=title, y=0.97, yanchor="top"), height=HEIGHT,
                      margin=dict(l=10, r=10, t=70, b=10), xaxis_title=x_title, yaxis_title=y_title,
                      legend=dict(orientation="h", x=0, y=1.0, xanchor="left", yanchor="bottom"),
                      uirevision="keep")  # keep the student's zoom while the chart updates
    return fig


COLORS = ("#e4572e", "#2e86de", "#2ca02c", "#9467bd")


def _mode(points: int) -> str:
    return "lines+markers" if points < 60 else "lines"  # markers only while they can be told apart


def _loss_lines(fig: go.Figure, series: Sequence[tuple[str, History]], colored: bool) -> go.Figure:
    """train_loss against total_train_step, one line per run (thinned so all together stay under MAX_POINTS)."""
    for k, (label, history) in enumerate(series):
        x, y = thin(history.steps, history.step_loss, MAX_POINTS // max(1, len(series)))
        fig.add_trace(go.Scatter(x=x, y=y, mode=_mode(x.size), name=label,
                                 line=dict(color=COLORS[k % len(COLORS)]) if colored else None))
    return fig


def live_loss_figure(series: Sequence[tuple[str, History]]) -> go.Figure:
    """The runs going now: train_loss against total_train_step, one line each."""
    return _layout(_loss_lines(go.Figure(), series, colored=True), t("train.chart.train_loss"), "total_train_step",
                   "loss")


def live_accuracy_figure(series: Sequence[tuple[str, History]]) -> go.Figure:
    """Test accuracy while the runs learn: a line from the quick checks on a fixed slice of test images
    during each epoch, and a big marker for each epoch's full test pass (the course's 整体正确率)."""
    fig = go.Figure()
    for k, (label, history) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        fig.add_trace(go.Scatter(x=np.asarray(history.probe_steps), y=np.asarray(history.probe_accuracy),
                                 mode="lines+markers", name=t("train.chart.live_accuracy", label=label),
                                 line=dict(color=color), marker=dict(size=5)))
        fig.add_trace(go.Scatter(x=np.asarray(history.epoch_steps), y=np.asarray(history.test_accuracy),
                                 mode="markers", name=t("train.chart.epoch_accuracy", label=label),
                                 marker=dict(color=color, size=13, symbol="diamond", line=dict(width=1, color="white"))))
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, t("train.chart.test"), "total_train_step", "accuracy")


def speed_figure(history: History) -> go.Figure:
    x, y = thin(history.steps, history.step_ips)
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines", name="images/s", line=dict(color="#6f42c1")))
    return _layout(fig, t("train.chart.speed"), "total_train_step", t("train.chart.images_per_sec"))


def overlay_figure(series: Sequence[tuple[str, History]], metric: str) -> go.Figure:
    """Several runs on one chart: metric 'test_accuracy' (per epoch) or 'train_loss' (per logged step)."""
    fig = go.Figure()
    if metric == "train_loss":
        return _layout(_loss_lines(fig, series, colored=False), t("train.chart.overlay_loss"), "total_train_step",
                       "train_loss")
    for label, history in series:
        x, y = np.asarray(history.epochs), np.asarray(history.test_accuracy)
        fig.add_trace(go.Scatter(x=x, y=y, mode=_mode(x.size), name=label))
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    fig.update_xaxes(dtick=1)
    return _layout(fig, t("train.chart.overlay_acc"), "epoch", "test_accuracy")


def confusion_figure(cm: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """Heatmap: row = true class, column = predicted class; the count in every cell."""
    names = list(class_names)
    fig = go.Figure(go.Heatmap(z=cm, x=names, y=names, colorscale="Blues", text=cm, texttemplate="%{text}",
                               hovertemplate=t("train.chart.cm_hover") + "<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    height = max(360, 32 * len(names) + 120)
    fig.update_layout(title=t("train.chart.confusion"), height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title=t("train.chart.predicted"), yaxis_title=t("train.chart.true"))
    return fig


def per_class_figure(acc: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    values = np.nan_to_num(np.asarray(acc, dtype=np.float64), nan=0.0)
    fig = go.Figure(go.Bar(x=list(class_names), y=values, marker_color="#2ca02c",
                           text=[f"{v:.0%}" for v in values], textposition="outside"))
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%")
    return _layout(fig, t("train.chart.per_class"), "", "accuracy")
