"""Reading a user's `.npz` archive of named arrays, with one-line errors.

`read_npz(path, what)` returns {name: array} or raises `ConfigError` naming the file and
what it should be ("replay buffer", "weight zoo"): missing, unreadable, or a single
`.npy` array instead of an archive. Pickled objects are refused (allow_pickle=False).
"""
import os

import numpy as np

from diffjax.errors import ConfigError


def read_npz(path: str, what: str) -> dict:
  """{name: array} of the `.npz` archive at `path` (module docstring)."""
  if not os.path.isfile(path):
    raise ConfigError(f"{what} {path!r} does not exist.")
  try:
    data = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as error:
    raise ConfigError(f"{what} {path!r} is not a readable .npz file ({error}).") from None
  if not isinstance(data, np.lib.npyio.NpzFile):
    raise ConfigError(f"{what} {path!r} holds a single array; an .npz archive of named "
                      "arrays is expected.")
  with data:
    try:
      return {k: data[k] for k in data.files}
    except (OSError, ValueError) as error:
      raise ConfigError(f"{what} {path!r} has an unreadable array ({error}).") from None
