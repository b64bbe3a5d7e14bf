"""Pictures as a network sees them: a small input scaled up pixel for pixel, and its top-k classes as bars."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from PIL import Image

HIGHLIGHT = "#e4572e"  # the most likely class
OTHERS = "#7f8fa6"


def enlarged(img: Image.Image, width: int = 192) -> Image.Image:
    """`img` (a 32×32 input) scaled to `width` with NEAREST, so each pixel the network sees stays a visible square."""
    return img.resize((width, width * img.size[1] // img.size[0]), Image.NEAREST)


def topk_chart(top: list[tuple[int, float]], names: list[str], title: str, x_title: str) -> go.Figure:
    """Horizontal bars of [(class index, probability)] (most likely first), that one on top and highlighted."""
    labels = np.array([names[i] for i, _ in top][::-1])
    probs = np.array([p for _, p in top][::-1])
    colors = np.where(np.arange(len(top)) == len(top) - 1, HIGHLIGHT, OTHERS)
    fig = go.Figure(go.Bar(x=probs, y=labels, orientation="h", marker_color=colors,
                           text=[f"{p:.1%}" for p in probs], textposition="auto"))
    fig.update_layout(title=title, height=60 + 36 * len(top), margin=dict(l=10, r=10, t=40, b=10),
                      xaxis=dict(range=[0, 1.04], dtick=0.2, tickformat=".0%", title=x_title))
    return fig
