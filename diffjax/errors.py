"""Errors that name a user's mistake: the command line prints them as one line, no traceback.

Library code raises `ConfigError` for an invalid user-supplied value (a config key, a
component option, a data file): the message names the key or value and what would be
valid. Everything else that escapes is a bug or a runtime failure.
"""


class ConfigError(ValueError):
  """An invalid user-supplied value; the message says which and what is valid."""
