"""The bridge methods' declarations (`diffjax.bridges.BRIDGE_METHODS`): their costs follow
their phases, the network evaluations of the README's IPF vs IMF study, every declared key
is a key of the family's base config, and a new method is one registration away from a
run; the studies' tables from evaluation records. Nothing is trained."""
import dataclasses

import pytest

from configs.bridges import base as bridge_base
from configs.bridges import lotka_volterra, toy
from diffjax.bridges import (BRIDGE_DATA, BRIDGE_METHODS, BridgeMethod, build_problem,
                             check_bridge_config, network_evaluations, register_method,
                             studies)
from diffjax import tables
from diffjax.bridges.config import COMMON_KEYS, declared_keys
from diffjax.bridges.imf import IMF, two_marginal_imf
from experiments import bridges

TINY = {"ipf": (toy, "ipf,tiny"), "imf": (toy, "imf,tiny"),
        "sbirr": (lotka_volterra, "refined,tiny"),
        "multimarginal": (lotka_volterra, "vanilla,tiny")}


def tiny_config(method):
  if method == "sbcfm":
    config = toy.get_config("imf,tiny")
    config.bridge.update(method="sbcfm", initial_steps=60)
    return config
  module, arg = TINY[method]
  return module.get_config(arg)


def simulates_with_a_network(method, phase_name):
  """Whether a phase's prepare runs a network: not IMF's first phase (fresh pairs every
  step), not the first backward phase of an IPF run or outer iteration (the reference's
  paths), except SBIRR's outer iterations after the first (the refit runs the forward
  network)."""
  if phase_name.endswith("_0"):
    return False
  if "ipf_1_backward" in phase_name:
    return method == "sbirr" and not phase_name.startswith("sbirr_1_")
  return True


@pytest.mark.parametrize("method", sorted(TINY) + ["sbcfm"])
def test_declared_cost_follows_the_phases(method):
  config = tiny_config(method)
  if method != "imf":
    config.bridge.caches_per_phase = 2    # Split phases too.
  task = bridges.build_task(config)
  segments = build_problem(config).num_segments
  assert segments == (6 if config.data.kind == "snapshots" else 1)
  costs = BRIDGE_METHODS.get(method).cost(config, segments)
  assert [c.num_steps for c in costs] == [p.num_steps for p in task.phases]
  assert [c.simulation > 0 for c in costs] == [simulates_with_a_network(method, p.name)
                                               for p in task.phases]
  assert all(c.regression == config.train.batch_size * (2 if p.name.endswith("_0") else 1)
             for c, p in zip(costs, task.phases))
  end = sum(c.num_steps for c in costs)
  both_networks = costs[0].num_steps if method in ("imf", "sbcfm") else 0
  assert network_evaluations(config, end, segments) == (
      sum(c.simulation for c in costs), (end + both_networks) * config.train.batch_size)


def test_oracle_reference_starts_at_the_system_parameters():
  oracle = build_problem(lotka_volterra.get_config("oracle,tiny"))
  vanilla = build_problem(lotka_volterra.get_config("vanilla,tiny"))
  assert {k: float(v) for k, v in oracle.reference.params.items()} == oracle.truth == {
      "alpha": 1.0, "beta": 1.0, "gamma": 1.0, "delta": 1.0}
  assert all(float(v) == 0.0 for v in vanilla.reference.params.values())
  assert "the true lotka_volterra reference" in oracle.description


def test_network_evaluations_of_the_toy_study():
  # The README's IPF vs IMF figures (moons -> 8 gaussians, batch 256, 1500 steps per
  # phase, caches of 2048 paths x 20 steps): IPF's run costs 7.37 M evaluations, IMF
  # reaches IPF's final errors after 2.04 M (its evaluation at step 6000).
  ipf, imf = toy.get_config("ipf"), toy.get_config("imf")
  assert network_evaluations(ipf, 24000) == (15 * 2 * 2048 * 20, 24000 * 256)
  assert sum(network_evaluations(ipf, 24000)) == 7_372_800
  assert network_evaluations(imf, 6000) == (3 * 2048 * 20, (2 * 1500 + 3 * 1500) * 256)
  assert sum(network_evaluations(imf, 6000)) == 2_042_880
  assert network_evaluations(imf, 0) == (0, 0)


def test_every_declared_key_is_in_the_base_config():
  # check_keys skips a key the config lacks: a declared key missing from the base config
  # would never be checked.
  config = bridge_base.base_config()
  keys = declared_keys()
  for key in keys:
    section, name = key.path.split(".")
    assert name in config[section], key.path
  paths = {k.path for k in keys}
  for entry in [BRIDGE_METHODS.get(n) for n in BRIDGE_METHODS.names()] + [
      BRIDGE_DATA.get(n) for n in BRIDGE_DATA.names()]:
    assert {k.path for k in entry.keys} <= paths
  assert {k.path for k in COMMON_KEYS} <= paths


def test_a_new_method_is_one_registration():
  # IMF with its initial coupling fixed to minibatch exact OT: registered here, it is
  # checked, built and costed by the family with no other change.
  name = "imf_exact_ot_for_test"
  register_method(dataclasses.replace(
      IMF, name=name, label="IMF from exact OT",
      phases=lambda setup: two_marginal_imf(setup, "exact_ot", 1),
      cost=lambda config, num_segments=1: IMF.cost(config, 1)[:3]))
  try:
    config = toy.get_config("imf,tiny")
    config.bridge.method = name
    method, _ = check_bridge_config(config)
    assert isinstance(method, BridgeMethod) and method.label == "IMF from exact OT"
    task = bridges.build_task(config)
    assert [p.name for p in task.phases] == ["imf_0", "imf_1_backward", "imf_1_forward"]
    assert network_evaluations(config, 10 ** 9)[0] == 2 * 128 * 8
  finally:
    del BRIDGE_METHODS._entries[name]  # pylint: disable=protected-access


def test_study_tables_from_records():
  config = toy.get_config("imf")
  errors = {3000: (0.9, 1.0), 6000: (0.5, 0.3), 9000: (0.4, 0.2)}
  records = [{"step": 1500, "loss": 1.0}] + [
      {"step": s, "forward_end_w2": f, "backward_end_w2": b,
       "forward_end_energy_distance": f, "backward_end_energy_distance": b}
      for s, (f, b) in errors.items()]
  curve = studies.end_error_curve(config, records)
  assert [p["step"] for p in curve] == [3000, 6000, 9000]   # Records without errors: out.
  assert curve[1]["nfe"] == 2_042_880 and curve[1]["backward_w2"] == 0.3
  assert studies.first_reaching(curve, {"forward_w2": 0.5, "backward_w2": 0.5}, "w2") == (
      2_042_880)
  never = {"forward_w2": 0.45, "backward_w2": 0.1}
  assert studies.first_reaching(curve, never, "w2") is None
  results = {("vanilla", s): {"emd_t0.5": 0.1 + s, "emd_mean": 0.2} for s in (0, 1)}
  results.update({("refined", s): {"emd_t0.5": 0.01, "emd_mean": 0.02,
                                   "reference_alpha_relative_error": 0.1 * s}
                  for s in (0, 1)})
  rows = studies.snapshot_rows(results, ("vanilla", "refined"), (0, 1), "refined")
  assert rows == [["t0.5", "0.6000 ± 0.7071", "0.0100 ± 0.0000"],
                  ["mean", "0.2000 ± 0.0000", "0.0200 ± 0.0000"],
                  ["reference_alpha_relative_error", "-", "0.0500 ± 0.0707"]]
  assert tables.markdown_table(["a", "b"], rows[:1]).splitlines() == [
      "| a | b |", "|---|---|", "| t0.5 | 0.6000 ± 0.7071 | 0.0100 ± 0.0000 |"]
