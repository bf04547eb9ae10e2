"""One look for the paper's figures (seaborn's theme and palette), written as PNG for the report
and PDF for a manuscript."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from roboscape.utils.io import atomic_path  # noqa: E402


def paper_style() -> None:
    """Seaborn's white-grid theme at paper scale."""
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")


def save_png_pdf(fig, png: str | Path, pdf: str | Path) -> None:
    """Write the figure to both files (atomically) and close it. The PDF carries no creation date,
    so the same figure gives the same bytes."""
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    with atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})
    plt.close(fig)
