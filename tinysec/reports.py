"""Tables (CSV + Markdown with a caption) and figures (PNG via matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .io import atomic_path


def write_table(df: pd.DataFrame, csv_path: str | os.PathLike, md_path: str | os.PathLike,
                caption: str, floatfmt: str = ".3f", md_df: pd.DataFrame | None = None) -> None:
    """Write ``df`` as CSV and as a Markdown table preceded by its caption (the Markdown shows
    ``md_df`` instead when given: the same rows with cells formatted for reading).

    The caption should say what every column means, the data sizes and the device or judge
    used, so the Markdown file stands on its own.
    """
    with atomic_path(csv_path) as fh:
        df.to_csv(fh, index=False)
    shown = df if md_df is None else md_df
    md = shown.to_markdown(index=False, floatfmt=floatfmt) if len(shown) else "_(no rows)_"
    with atomic_path(md_path) as fh:
        fh.write(f"{caption.strip()}\n\n{md}\n")


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> None:
    """Save a matplotlib figure as PNG and close it."""
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def device_description() -> str:
    """Human-readable name of the compute device, for table captions."""
    import platform

    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        return f"{n}x {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}, {os.cpu_count()} cores, fp32)"
