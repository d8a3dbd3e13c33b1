"""Users' own series and arrays from .npz / .npy / .csv files, checked before anything runs.

  series = load_series("prices.csv", channels=3)     # (T, 3) float32
  volume = load_array("volume.npz", "volume", ndim=3)

A .csv holds one row per time step and one column per channel (an optional header row of
names is skipped); an .npz holds the array under `name` (or as its only array); an .npy
holds it alone. Every problem is one `ConfigError` line naming the file and the bad value:
a missing or unreadable file, a NaN or infinite entry (its row and column), the wrong
number of channels or dimensions, too few steps for a window (`check_window`).
"""
import csv
import os

import numpy as np

from diffjax.errors import ConfigError


def _read_csv(path):
  with open(path, newline="", encoding="utf-8") as f:
    rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
  if not rows:
    raise ConfigError(f"{path} holds no rows.")

  def number(cell, r, c):
    try:
      return float(cell) if cell.strip() else float("nan")
    except ValueError:
      raise ConfigError(f"{path} row {r + 1}, column {c + 1}: {cell!r} is not a "
                        "number.") from None
  first = rows[0]
  try:
    [float(cell) for cell in first]
  except ValueError:
    rows = rows[1:]           # A header of channel names.
    offset = 1
  else:
    offset = 0
  widths = {len(row) for row in rows}
  if len(widths) > 1:
    raise ConfigError(f"{path}: rows have different numbers of columns {sorted(widths)}; "
                      "every row needs one value per channel.")
  return np.array([[number(cell, r + offset, c) for c, cell in enumerate(row)]
                   for r, row in enumerate(rows)], np.float64)


def load_array(path, name=None, ndim=None, what="array"):
  """The float32 array of a .npz (under `name`, or its only array), .npy or .csv file;
  ndim: the number of dimensions it must have (None: any)."""
  if not os.path.isfile(path):
    raise ConfigError(f"The {what} file {path} does not exist.")
  extension = os.path.splitext(path)[1].lower()
  if extension == ".csv":
    array = _read_csv(path)
  elif extension in (".npz", ".npy"):
    try:
      loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
      raise ConfigError(f"{path} is not a readable {extension} file ({error}).") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
      keys = list(loaded.keys())
      if name in keys:
        array = loaded[name]
      elif len(keys) == 1:
        array = loaded[keys[0]]
      else:
        raise ConfigError(f"{path} holds arrays {keys}; name the {what} {name!r}.")
    else:
      array = loaded
  else:
    raise ConfigError(f"The {what} file {path} must end in .npz, .npy or .csv.")
  array = np.asarray(array)
  if not np.issubdtype(array.dtype, np.number):
    raise ConfigError(f"The {what} in {path} has dtype {array.dtype}, not numbers.")
  if ndim is not None and array.ndim != ndim:
    raise ConfigError(f"The {what} in {path} has shape {array.shape}; it must have {ndim} "
                      "dimensions.")
  bad = np.argwhere(~np.isfinite(array))
  if len(bad):
    where = ", ".join(str(int(i)) for i in bad[0])
    raise ConfigError(f"The {what} in {path} has a NaN or infinite value at index "
                      f"({where}) ({len(bad)} in all); fill or drop them first.")
  return array.astype(np.float32)


def load_series(path, channels=None, name="series"):
  """A (T, C) series: rows are time steps, columns channels (a 1-D array is one channel);
  channels: the number it must have (None: any)."""
  series = load_array(path, name, what="series")
  if series.ndim == 1:
    series = series[:, None]
  if series.ndim != 2:
    raise ConfigError(f"The series in {path} has shape {series.shape}; it must be (T,) or "
                      "(T, channels).")
  if channels is not None and series.shape[1] != channels:
    raise ConfigError(f"The series in {path} has {series.shape[1]} channels; "
                      f"data.channels={channels} (set it to {series.shape[1]}).")
  return series


def check_window(length, context, horizon, where="the series"):
  """Refuses a context + horizon window longer than `length` steps."""
  if context + horizon > length:
    raise ConfigError(f"data.context={context} + data.horizon={horizon} is longer than "
                      f"{where} ({length} steps); shorten the context.")
