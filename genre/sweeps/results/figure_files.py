"""How a sweep's figures are written: PNG for the screen, PDF (vector) for a paper, the title in each file's
metadata so that a reader of the file (or a test) knows what it shows."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # sweeps end on headless machines
import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def save_png_and_pdf(figure: Figure, path: Path, title: str) -> list[Path]:
    """Write ``figure`` to ``path`` (PNG) and beside it as PDF, with ``title`` as their metadata title, and
    close it. Returns both paths."""
    figure.tight_layout()
    written = [path, path.with_suffix(".pdf")]
    for target in written:
        figure.savefig(target, dpi=120, metadata={"Title": title})
    plt.close(figure)
    return written
