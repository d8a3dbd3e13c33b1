"""SynthER's pieces: the Pendulum simulator against Gymnasium's Pendulum-v1, the replay
buffer's file and vector forms, the per-dimension normalisation, the dynamics error, the
fitted-Gaussian baseline, the residual MLP, and the family end to end on its :tiny config
with bad buffers refused in one line before the workdir is touched."""
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import experiments
from diffjax.data import pendulum, replay
from diffjax.conditioning import mark_present
from diffjax.data.normalisation import fit_standardizer
from diffjax.errors import ConfigError
from diffjax.models import build_model
from diffjax.replay import synther
from diffjax.train.workdir import read_metrics
from tests.helpers import run_main

# Gymnasium 1.4.0, Pendulum-v1, reset(seed=3), then these torques (3.0 is clipped to 2).
GYM_START = [-0.85865855, -0.51254797, -0.526379]
GYM_ACTIONS = [2.0, -1.5, 0.7, 3.0, -0.2]
GYM_OBSERVATIONS = [[-0.8739087, -0.48609006, -0.61079], [-0.9014918, -0.43279618, -1.2003576],
                    [-0.9299224, -0.36775574, -1.4199547], [-0.9533031, -0.30201524, -1.3957715],
                    [-0.9749741, -0.22231843, -1.652283]]
GYM_REWARDS = [-6.809623276770187, -6.977420589831704, -7.402214200407134,
               -7.850842043424133, -8.230873724569811]


def _rollout(observation, actions):
  observations, rewards = [], []
  obs = jnp.asarray([observation], jnp.float32)
  for a in actions:
    obs, reward = pendulum.true_transition(obs, jnp.asarray([[a]], jnp.float32))
    observations.append(np.asarray(obs[0]))
    rewards.append(float(reward[0]))
  return np.array(observations), np.array(rewards)


def test_pendulum_steps_match_gymnasium():
  observations, rewards = _rollout(GYM_START, GYM_ACTIONS)
  np.testing.assert_allclose(observations, GYM_OBSERVATIONS, atol=2e-5)
  np.testing.assert_allclose(rewards, GYM_REWARDS, atol=2e-4)
  if importlib.util.find_spec("gymnasium") is None:   # The optional extra: recorded only.
    return
  import gymnasium  # pylint: disable=g-import-not-at-top
  env = gymnasium.make("Pendulum-v1")
  obs, _ = env.reset(seed=11)
  actions = np.random.default_rng(0).uniform(-2.5, 2.5, size=60)
  expected = [env.step(np.array([a], np.float32))[:2] for a in actions]
  observations, rewards = _rollout(obs, actions)
  np.testing.assert_allclose(observations, [o for o, _ in expected], atol=1e-4)
  np.testing.assert_allclose(rewards, [r for _, r in expected], atol=1e-3)
  collected = pendulum.collect_pendulum_buffer(2, seed=0, backend="gymnasium", length=20)
  assert collected["observations"].shape == (40, 3)
  errors = synther.dynamics_error(collected, pendulum.true_transition)
  assert errors["next_observation_mse"] < 1e-9 and errors["reward_mse"] < 1e-8


@pytest.fixture(scope="module")
def buffer():
  return pendulum.collect_pendulum_buffer(4, seed=1)


def test_collected_buffer_obeys_the_simulator(buffer):
  assert buffer["observations"].shape == (800, 3) and buffer["actions"].shape == (800, 1)
  errors = synther.dynamics_error(buffer, pendulum.true_transition)
  assert errors["next_observation_mse"] < 1e-10 and errors["reward_mse"] < 1e-8
  # Episodes are consecutive: the next observation is the following row's observation.
  episode = slice(0, pendulum.EPISODE_LENGTH)
  np.testing.assert_allclose(buffer["next_observations"][episode][:-1],
                             buffer["observations"][episode][1:], atol=0)
  shifted = dict(buffer, next_observations=buffer["next_observations"] + 0.1,
                 rewards=buffer["rewards"] - 0.3)
  errors = synther.dynamics_error(shifted, pendulum.true_transition)
  assert errors["next_observation_mse"] == pytest.approx(0.01, rel=1e-3)
  assert errors["reward_mse"] == pytest.approx(0.09, rel=1e-3)


def test_transitions_round_trip_through_vectors_normalisation_and_files(buffer, tmp_path):
  x = replay.flatten_transitions(buffer)
  assert x.shape == (800, 3 + 1 + 1 + 3 + 1)
  normaliser = synther.transition_normaliser(buffer)
  z = normaliser.normalise(x)
  np.testing.assert_allclose(z[:, :-1].mean(0), 0.0, atol=1e-4)
  np.testing.assert_allclose(z[:, :-1].std(0), 1.0, atol=1e-3)
  np.testing.assert_array_equal(z[:, -1], x[:, -1])          # The terminal flag unscaled.
  back = synther.synthetic_buffer(z, normaliser, replay.transition_dims(buffer))
  for key in replay.TRANSITION_KEYS:
    np.testing.assert_allclose(back[key], buffer[key], atol=1e-5)
  path = str(tmp_path / "buffer.npz")
  replay.save_buffer(path, buffer)
  loaded = replay.load_buffer(path)
  for key in replay.TRANSITION_KEYS:
    np.testing.assert_array_equal(loaded[key], buffer[key])
  constant = fit_standardizer(np.ones((5, 2)))          # A constant column keeps std 1.
  np.testing.assert_array_equal(constant.std, [1.0, 1.0])


def test_fitted_gaussian_matches_the_buffer_moments(buffer):
  draws = synther.gaussian_buffer(buffer, jax.random.PRNGKey(0), 40_000)
  x, y = replay.flatten_transitions(buffer), replay.flatten_transitions(draws)
  np.testing.assert_allclose(y[:, :-1].mean(0), x[:, :-1].mean(0),
                             atol=0.03 * x[:, :-1].std(0).max())
  np.testing.assert_allclose(np.cov(y[:, :-1], rowvar=False), np.cov(x[:, :-1], rowvar=False),
                             atol=0.05 * x[:, :-1].var(0).max())
  assert set(np.unique(draws["terminals"])) <= {0.0, 1.0}


def test_coverage_gap_is_the_mean_nearest_neighbour_distance():
  # Reference (s, a) on a line: s = (k, 0, 0), a = 0 for k = 0..3; the buffer holds k = 0
  # and 3. Scaled by the reference's std (sqrt(1.25) on the first dimension, 1 elsewhere)
  # the nearest distances are 0, 1, 1, 0 in units of k.
  def line(ks):
    ks = np.asarray(ks, np.float32)
    return {"observations": np.stack([ks, 0 * ks, 0 * ks], 1), "actions": 0 * ks[:, None]}
  reference = line([0, 1, 2, 3])
  assert synther.coverage_gap(reference, line([0, 3])) == pytest.approx(
      0.5 / np.sqrt(1.25), rel=1e-6)
  assert synther.coverage_gap(reference, line([3, 2, 1, 0, 7]), chunk=3) == 0.0
  assert synther.coverage_gap(reference, line([0])) == pytest.approx(
      1.5 / np.sqrt(1.25), rel=1e-6)


def _clipped_noise_second_moment(center, std, bound):
  """E[(clip(c + std Z, -bound, bound) - c)^2] for Z ~ N(0, 1), c in [-bound, bound]:
  with l, u = (-bound - c) / std, (bound - c) / std, the noise is kept on (l, u), where
  the integral of z^2 phi(z) is Phi(u) - Phi(l) - u phi(u) + l phi(l), and censored to
  u std or l std outside it."""
  lo, hi = (-bound - center) / std, (bound - center) / std
  cdf, pdf = jax.scipy.stats.norm.cdf, jax.scipy.stats.norm.pdf
  inside = cdf(hi) - cdf(lo) - hi * pdf(hi) + lo * pdf(lo)
  return std ** 2 * (inside + hi ** 2 * (1 - cdf(hi)) + lo ** 2 * cdf(lo))


@pytest.mark.parametrize("std", [0.3, 1.5])
def test_action_deviation_is_the_behaviour_noise_second_moment(std):
  # One noise level for every episode: each row's expected squared deviation from the
  # controller is the censored-Gaussian moment at the controller's torque. The noise is
  # drawn afresh at each step, so the deviations around it are uncorrelated and their mean
  # has the standard error sd / sqrt(N).
  collected = pendulum.collect_pendulum_buffer(10, seed=3, noise_range=(std, std))
  center = pendulum.swing_up_controller(jnp.asarray(collected["observations"]))[:, 0]
  expected = _clipped_noise_second_moment(center, std, pendulum.MAX_TORQUE)
  squared = (collected["actions"][:, 0] - np.asarray(center)) ** 2
  tolerance = 5 * np.std(squared - expected) / np.sqrt(len(squared))
  value = synther.action_deviation(collected, pendulum.swing_up_controller)
  assert value == pytest.approx(float(squared.mean()), rel=1e-5)
  assert abs(value - float(expected.mean())) < tolerance
  # Clipping matters: the uncensored moment std^2 is outside the tolerance at std 1.5.
  if std > 1.0:
    assert std ** 2 - value > tolerance
  # A fixed offset of the actions (d0, d1) on a two-dimensional policy: d0^2 + d1^2.
  two = {"observations": collected["observations"],
         "actions": np.concatenate([collected["actions"] + 0.5,
                                    collected["actions"] - 1.0], 1)}
  policy = lambda s: jnp.concatenate([jnp.asarray(collected["actions"])] * 2, 1)
  assert synther.action_deviation(two, policy) == pytest.approx(1.25, rel=1e-5)


def test_relabelled_rows_obey_the_simulator_in_closed_form():
  # Rows as a model may draw them: off the unit circle, actions beyond the torque limit,
  # (r, s') unrelated. Row 0: theta = 0 at rest (radius 2), u = 1: theta_dot' = 3 u dt =
  # 0.15, theta' = 0.15 dt, r = -0.001 u^2. Row 1: theta = -pi / 2, theta_dot = 1, u = 2:
  # theta_dot' = 1 + (-15 + 6) dt = 0.55, theta' = -pi / 2 + 0.55 dt, r = -((pi / 2)^2 +
  # 0.1 + 0.004). Row 2: u = 3 acts as 2 (clipped) on the same state.
  rows = {"observations": np.array([[2, 0, 0], [0, -0.5, 1], [0, -0.5, 1]], np.float32),
          "actions": np.array([[1.0], [2.0], [3.0]], np.float32),
          "rewards": np.full(3, 7.0, np.float32),
          "next_observations": np.full((3, 3), 9.0, np.float32),
          "terminals": np.array([0, 1, 0], np.float32)}
  out = synther.relabel(rows, pendulum.true_transition)
  theta = np.array([0.15 * 0.05, -np.pi / 2 + 0.55 * 0.05, -np.pi / 2 + 0.55 * 0.05])
  np.testing.assert_allclose(out["next_observations"], np.stack(
      [np.cos(theta), np.sin(theta), [0.15, 0.55, 0.55]], 1), atol=1e-6)
  reward = -((np.pi / 2) ** 2 + 0.1 + 0.004)
  np.testing.assert_allclose(out["rewards"], [-0.001, reward, reward], rtol=1e-6)
  for key in ("observations", "actions", "terminals"):   # s, a and the flag are kept.
    np.testing.assert_array_equal(out[key], rows[key])
  assert synther.dynamics_error(out, pendulum.true_transition) == {
      "next_observation_mse": 0.0, "reward_mse": 0.0}
  model = synther.RELABELLINGS.get("model")(None, rows, None)
  np.testing.assert_array_equal(model, rows["actions"])
  with pytest.raises(ValueError, match="actions of shape \\(3, 2\\)"):
    synther.relabel(rows, pendulum.true_transition, np.zeros((3, 2)))


def test_behaviour_relabelling_draws_the_behaviour_noise(buffer):
  # Fresh behaviour actions at the buffer's states (800 rows, 25 draws each): every row's
  # noise std is U[0.2, 2], so its expected squared deviation from the controller is the
  # censored-Gaussian moment averaged over that std (midpoint rule, 200 nodes).
  states = {"observations": np.tile(buffer["observations"], (25, 1)),
            "actions": np.tile(buffer["actions"], (25, 1))}
  actions = synther.RELABELLINGS.get("behaviour")(jax.random.PRNGKey(5), states,
                                                  pendulum.behaviour_policy)
  out = synther.relabel(states, pendulum.true_transition, actions)
  assert np.abs(out["actions"]).max() <= pendulum.MAX_TORQUE
  assert synther.dynamics_error(out, pendulum.true_transition) == {
      "next_observation_mse": 0.0, "reward_mse": 0.0}
  center = pendulum.swing_up_controller(jnp.asarray(states["observations"]))[:, 0]
  low, high = pendulum.NOISE_RANGE
  nodes = (np.arange(200)[:, None] + 0.5) / 200

  def moment(top):   # Per row, the mean over std ~ U[low, top].
    return np.asarray(_clipped_noise_second_moment(
        center[None], low + (top - low) * nodes, pendulum.MAX_TORQUE)).mean(0)
  expected = moment(high)
  squared = (out["actions"][:, 0] - np.asarray(center)) ** 2
  tolerance = 5 * np.std(squared - expected) / np.sqrt(len(squared))
  value = synther.action_deviation(out, pendulum.swing_up_controller)
  assert abs(value - float(expected.mean())) < tolerance
  # The tolerance tells the range apart: std ~ U[0.2, 1.5] is outside it.
  assert abs(value - float(moment(1.5).mean())) > tolerance


def test_unknown_relabelling_is_refused_before_the_workdir(tmp_path):
  from configs.datatypes import synther as config_file  # pylint: disable=g-import-not-at-top
  config = config_file.get_config("tiny")
  config.eval.relabel = ("model", "controller")
  with pytest.raises(ConfigError, match="eval.relabel='controller' is not one of the "
                     "valid names: behaviour, model") as error:
    experiments.run(config, str(tmp_path / "run"))
  assert "\n" not in str(error.value)
  assert not os.path.exists(tmp_path / "run")


def test_residual_mlp_shapes_and_conditioning():
  model = build_model("residual_mlp", (9,), width=16, depth=2, cond_dim=3)
  params = model.init(jax.random.PRNGKey(0))
  x, t = jnp.ones((4, 9)), jnp.full((4,), 0.5)
  present = jnp.ones((4,), bool)
  out = model.apply(params, x, t, mark_present(jnp.zeros((4, 3)), present))
  assert out.shape == (4, 9)
  assert not np.allclose(out, model.apply(params, x, t, mark_present(jnp.ones((4, 3)),
                                                                     present)))
  with pytest.raises(ConfigError, match="vector data"):
    build_model("residual_mlp", (3, 3))


def test_synther_tiny_end_to_end(tmp_path):
  from configs.datatypes import synther as config_file  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  config = config_file.get_config("tiny")
  config.eval.relabel = ("behaviour", "model")
  experiments.run(config, workdir)
  record = read_metrics(workdir)[-1]
  for name in ("small", "small_synthetic", "small_gaussian", "full",
               "small_relabel_behaviour", "small_relabel_model"):
    assert np.isfinite(record[f"return_{name}"]) and record[f"return_{name}"] <= 0.0
  for name in ("synthetic", "gaussian"):
    assert record[f"{name}_next_observation_mse"] >= 0.0
    # Adding rows to the small buffer can only bring its nearest (s, a) closer.
    assert 0.0 <= record[f"coverage_gap_small_{name}"] <= record["coverage_gap_small"]
  # The probe on the real buffers is the library's measure of the same collected buffer.
  config = config_file.get_config("tiny")
  full = pendulum.collect_pendulum_buffer(config.data.num_episodes, seed=config.seed)
  small = replay.subsample_buffer(full, config.data.fraction, pendulum.EPISODE_LENGTH,
                                  seed=config.seed)
  for name, real in (("small", small), ("full", full)):
    assert record[f"controller_action_mse_{name}"] == pytest.approx(
        synther.action_deviation(real, pendulum.swing_up_controller), rel=1e-5)
  assert np.isfinite(record["controller_action_mse_synthetic"])
  # "model" keeps the synthetic actions; "behaviour" draws bounded ones.
  assert record["controller_action_mse_relabel_model"] == pytest.approx(
      record["controller_action_mse_synthetic"], rel=1e-6)
  assert 0.0 < record["controller_action_mse_relabel_behaviour"] <= 16.0


@pytest.mark.parametrize("broken,message", [
    ("missing", "lacks the key\\(s\\) terminals"),
    ("nan", "rewards has a non-finite value \\(nan\\) in row 3"),
])
def test_bad_buffers_fail_in_one_line_before_the_workdir(tmp_path, buffer, broken, message):
  from configs.datatypes import synther as config_file  # pylint: disable=g-import-not-at-top
  bad = dict(buffer)
  if broken == "missing":
    del bad["terminals"]
  else:
    bad["rewards"] = bad["rewards"].copy()
    bad["rewards"][3] = np.nan
  path = str(tmp_path / "bad.npz")
  np.savez(path, **bad)
  config = config_file.get_config("tiny")
  config.data.buffer = path
  with pytest.raises(ConfigError, match=message) as error:
    experiments.run(config, str(tmp_path / "run"))
  assert "\n" not in str(error.value)
  assert not os.path.exists(tmp_path / "run")


def test_bad_buffer_on_the_command_line_exits_2(tmp_path, buffer):
  path = str(tmp_path / "bad.npz")
  np.savez(path, **{k: v for k, v in buffer.items() if k != "actions"})
  workdir = tmp_path / "run"
  result = run_main(["--config=configs/datatypes/synther.py:tiny", f"--workdir={workdir}",
                     f"--config.data.buffer={path}"])
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and "lacks the key(s) actions" in lines[0]
  assert not workdir.exists()
