"""Pictures of a sweep report for the README (docs/report-table.png, report-intervals.png, report-heatmap.png).

Rewrites each sweep's summary with ``genre.cli.report`` (so the files are this checkout's), compiles the
two-key sweep's ``summary.tex`` in a one-table LaTeX document (``pdflatex`` with booktabs: Debian's
``texlive-latex-base`` and ``texlive-latex-recommended``), rasterises it (``pdftoppm``, Debian's
``poppler-utils``) and crops it, and copies the figures:

    python docs/report_pictures.py <one-key sweep dir> <two-key sweep dir> docs/

The README's pictures were made from two k-fold sweeps of the demo corpus (commands in the README).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from genre.cli.report import main as report

DOCUMENT = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage[margin=1.5cm]{geometry}
\usepackage{booktabs}
\pagestyle{empty}
\begin{document}
\input{summary.tex}
\end{document}
"""


def _trimmed(png: Path, margin: int = 16) -> None:
    """Crop the page's white border around the table (keeping ``margin`` pixels)."""
    from PIL import Image, ImageOps

    image = Image.open(png).convert("RGB")
    box = ImageOps.invert(image).getbbox()
    if box is not None:
        left, top, right, bottom = box
        image.crop((max(0, left - margin), max(0, top - margin), right + margin, bottom + margin)).save(png)


def table_picture(sweep_dir: Path, out: Path) -> None:
    """Compile ``sweep_dir/summary.tex`` into a PDF and rasterise its page into ``out`` (PNG)."""
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        shutil.copy(sweep_dir / "summary.tex", folder / "summary.tex")
        (folder / "table.tex").write_text(DOCUMENT)
        subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "table.tex"],
            cwd=folder,
            check=True,
            capture_output=True,
        )
        subprocess.run(["pdftoppm", "-png", "-r", "150", "-singlefile", "table.pdf", "table"], cwd=folder, check=True)
        _trimmed(folder / "table.png")
        shutil.copy(folder / "table.png", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("one_key", type=Path, help="a sweep over one key (its intervals.png)")
    parser.add_argument("two_keys", type=Path, help="a sweep over two keys (its heatmap.png and summary.tex)")
    parser.add_argument("out", type=Path, help="the folder for the pictures (docs/)")
    args = parser.parse_args()
    for sweep in (args.one_key, args.two_keys):
        if report([str(sweep)]) != 0:
            raise SystemExit(f"genre.cli.report failed on {sweep}")
    shutil.copy(args.one_key / "intervals.png", args.out / "report-intervals.png")
    shutil.copy(args.two_keys / "heatmap.png", args.out / "report-heatmap.png")
    table_picture(args.two_keys, args.out / "report-table.png")
    for name in ("report-table.png", "report-intervals.png", "report-heatmap.png"):
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
