"""The bridges family's config: every key it reads, checked before anything is built.

`check_bridge_config(config)` refuses, with one `ConfigError` line naming the key, its
value and what is valid: an unknown bridge.method or data.kind (their registries,
`BRIDGE_METHODS` and `BRIDGE_DATA`), a method and data kind that bridge different problems,
a bad value of any key the family reads (the common keys below and every key a registered
method or data kind declares), an unknown end metric, and what the method's and the data
kind's own checks refuse. `build_problem(config)` then builds the data kind's problem
(reading a snapshot file, drawing the Gaussians), which refuses bad data the same way.
"""
from diffjax.bridges.methods import BRIDGE_METHODS, BridgeMethod, methods_for
from diffjax.bridges.problems import BRIDGE_DATA, BridgeData
from diffjax.bridges.reference import check_sigma
from diffjax.errors import ConfigError
from diffjax.metrics import METRICS
from diffjax.train.validation import Key, check_keys

NAME_KEYS = (Key("bridge.method", "name", names=BRIDGE_METHODS.names),
             Key("data.kind", "name", names=BRIDGE_DATA.names))
COMMON_KEYS = (
    Key("bridge.num_steps", "int", 1, meaning="Euler–Maruyama steps (per segment)"),
    Key("bridge.steps_per_phase", "int", 1, meaning="regression steps per phase"),
    Key("eval.num_samples", "int", 2, meaning="paths per direction in each evaluation"),
    Key("eval.num_trajectories", "int", 0, meaning="paths drawn in the figures"),
    Key("eval.reference_seed", "int", 0, 2 ** 31 - 2),
)
PROBLEM_TEXT = {"two_marginal": "two marginals", "snapshots": "snapshots"}


def declared_keys():
  """Every key the family reads: the common ones, then each registered method's and data
  kind's (the first declaration of a path wins)."""
  keys, seen = [], set()
  declared = [COMMON_KEYS] + [BRIDGE_METHODS.get(n).keys for n in BRIDGE_METHODS.names()]
  declared += [BRIDGE_DATA.get(n).keys for n in BRIDGE_DATA.names()]
  for key in (k for group in declared for k in group):
    if key.path not in seen:
      seen.add(key.path)
      keys.append(key)
  return tuple(keys)


def check_end_metrics(value):
  names = ", ".join(METRICS.names())
  if isinstance(value, str) or not isinstance(value, (tuple, list)):
    raise ConfigError(f"eval.end_metrics={value!r} must be a tuple of metric names "
                      f"(valid: {names}); () for none.")
  for name in value:
    if name not in METRICS:
      raise ConfigError(f"eval.end_metrics={tuple(value)!r}: {name!r} is not a metric; "
                        f"valid names: {names}.")


def check_bridge_config(config):
  """Checks every value the bridges family reads (module docstring); returns the
  (`BridgeMethod`, `BridgeData`) the config names."""
  check_keys(config, NAME_KEYS)
  method: BridgeMethod = BRIDGE_METHODS.get(config.bridge.method)
  kind: BridgeData = BRIDGE_DATA.get(config.data.kind)
  if method.problem != kind.problem:
    raise ConfigError(
        f"bridge.method={method.name!r} bridges {PROBLEM_TEXT[method.problem]} but "
        f"data.kind={kind.name!r} gives {PROBLEM_TEXT[kind.problem]}; with this data "
        f"choose bridge.method from {', '.join(methods_for(kind.problem))}.")
  check_sigma(config.bridge.sigma, "bridge.sigma")
  check_keys(config, method.keys + kind.keys + declared_keys())
  if "end_metrics" in config.eval:
    check_end_metrics(config.eval.end_metrics)
  method.check(config)
  kind.check(config)
  return method, kind


def build_problem(config):
  """The problem of a checked config's data kind (`diffjax.bridges.problems`)."""
  return BRIDGE_DATA.get(config.data.kind).build(config)
