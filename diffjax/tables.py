"""Result tables of studies: markdown text and the files a study writes in its workdir.

  write_table(workdir, "nfe", ["sampler", "W2"], rows, record, "caption")

writes nfe.md (title, caption, table) and nfe.json (`record`) through
`diffjax.train.storage`, so a bucket workdir works like a local one. mean_std formats
several seeds' values of one figure as "mean ± std".
"""
import json
from typing import Any, Sequence

import numpy as np

from diffjax.train import storage


def markdown_table(header: Sequence, rows: Sequence[Sequence]) -> str:
  """A markdown table: one header row, a separator and one line per row."""
  lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
  return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def mean_std(values, digits: int = 3) -> str:
  """"mean ± std" of a sequence of numbers (the sample std, ddof 1; 0 for one value)."""
  values = np.asarray(values, np.float64)
  spread = values.std(ddof=1) if len(values) > 1 else 0.0
  return f"{values.mean():.{digits}f} ± {spread:.{digits}f}"


def write_table(workdir, name: str, header: Sequence, rows: Sequence[Sequence],
                record: Any, caption: str) -> str:
  """Writes <workdir>/<name>.md and <name>.json; returns the markdown text."""
  directory = storage.workdir_path(workdir)
  storage.makedirs(directory)
  text = f"# {name}\n\n{caption}\n\n{markdown_table(header, rows)}\n"
  storage.write_text(directory / f"{name}.md", text)
  storage.write_text(directory / f"{name}.json", json.dumps(record, indent=2, default=float))
  return text
