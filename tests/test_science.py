"""Scientific data and methods: SeisFusion's input guidance, the trace baselines, the
Lorenz-96 ensembles, the order book and TRADES's denoiser, SEEDS's conditions."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from diffjax.data import (OrderBook, layered_volumes, lorenz96_ensembles, simulate_order_flow,
                          trace_mask)
from diffjax.data.lorenz96 import lorenz96_tendency
from diffjax.data.mixture_oracle import mixture_oracle
from diffjax.data.gaussian_mixture import GaussianMixture
from diffjax.data.seismic import check_trace_mask
from diffjax.errors import ConfigError
from diffjax.guidance import (ConditionalModel, GuidanceContext, build_guidance,
                              check_guidance_section, guidance_cost)
from diffjax.models import build_model
from diffjax.paths import build_path
from diffjax.solvers import sample
from diffjax.science import (ORDER_DIM, OrderScaler, book_dim, ensemble_scores,
                             interpolate_traces, member_sampler, predictive_score,
                             resample_orders, seed_condition, snr_db, stylised_facts,
                             training_pairs, volume_slices)


# ----- SeisFusion's input guidance -----

def _oracle(dim=6):
  path = build_path("rectified_flow")
  cov = 0.5 * jnp.eye(dim) + 0.5     # Strongly correlated entries.
  target = GaussianMixture(jnp.ones((1,)), jnp.zeros((1, dim)), cov[None])
  return path, mixture_oracle(path, target)


@pytest.mark.parametrize("sampler, renoise", [("ddim", False), ("heun", False),
                                              ("ancestral", True)])
def test_input_guidance_leaves_known_entries_exactly_unchanged(sampler, renoise):
  path, oracle = _oracle()
  observed = 1.0 + 1e-3 * jax.random.normal(jax.random.PRNGKey(0), (256, 6))
  mask = jnp.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
  context = GuidanceContext(ConditionalModel(lambda cond: oracle.fields(), None), path,
                            sampler, observed=observed, mask=mask)
  guidance = build_guidance(ml_collections.ConfigDict(dict(method="input", renoise=renoise)),
                            context)
  x0 = path.source_sample(jax.random.PRNGKey(1), (256, 6))
  out = np.asarray(sample(sampler, None, path, x0, jax.random.PRNGKey(2), num_steps=8,
                          guidance=guidance).x)
  np.testing.assert_array_equal(out[:, mask > 0], np.asarray(observed)[:, mask > 0])
  # The missing entries are pulled towards the observed ones: their exact posterior mean
  # is 0.75 (correlation 1/2 with three entries near 1); the prior's is 0. Replacement is
  # not an exact posterior sampler (0.25-0.45 here: README), but it moves the right way.
  assert np.all(np.isfinite(out))
  assert 0.15 < out[:, mask == 0].mean() <= 0.75


def test_input_guidance_refuses_a_mask_of_the_wrong_shape():
  path, oracle = _oracle()
  context = GuidanceContext(ConditionalModel(lambda cond: oracle.fields(), None), path,
                            "ddim", observed=jnp.zeros((4, 6)), mask=jnp.ones((5,)))
  guidance = build_guidance({"method": "input"}, context)
  with pytest.raises(ConfigError, match=r"mask has shape \(5,\)"):
    sample("ddim", None, path, jnp.zeros((4, 6)), jax.random.PRNGKey(0), num_steps=2,
           guidance=guidance)
  with pytest.raises(ConfigError, match="needs observed, mask"):
    build_guidance({"method": "input"}, context._replace(observed=None, mask=None))
  with pytest.raises(ConfigError, match=r"mask has shape \(5,\)"):
    build_guidance({"method": "input"}, context._replace(state_shape=(4, 6)))


def test_input_guidance_declares_its_check_and_cost():
  with pytest.raises(ConfigError, match="renoise must be true or false"):
    check_guidance_section({"method": "input", "renoise": "yes"}, False, "ddim")
  assert guidance_cost({"method": "input"}, "heun") == (1.0, False)


# ----- seismic data and baselines -----

def test_velocity_volumes_are_layered_and_masks_drop_their_fraction():
  volumes = layered_volumes(0, 3, (16, 12, 20))
  assert volumes.shape == (3, 16, 12, 20)
  assert 1.5 <= volumes.min() and volumes.max() <= 4.5
  assert len(np.unique(volumes[0])) <= 7
  for kind in ("random", "regular"):
    mask = trace_mask(1, (16, 12), 0.5, kind)
    assert mask.shape == (16, 12) and abs(1 - mask.mean() - 0.5) < 0.05
  assert np.all(trace_mask(1, (16, 12), 0.5, "regular")[:, 0] == trace_mask(
      1, (16, 12), 0.5, "regular")[:, 5])   # Whole planes x = const.
  with pytest.raises(ConfigError, match=r"shape \(16, 11\)"):
    check_trace_mask(np.ones((16, 11)), volumes.shape[1:])
  sections, masks = volume_slices(volumes, np.ones((3, 16, 12)))
  assert sections.shape == (36, 16, 20) and masks.shape == (36, 16)
  np.testing.assert_array_equal(sections[13], volumes[1, :, 1, :])


def test_trace_baselines_are_exact_where_they_should_be_and_snr_is_scale_free():
  x = np.arange(10.0)[:, None] * np.ones((1, 4)) + np.arange(4.0)    # linear in x
  mask = np.array([1, 0, 0, 1, 1, 0, 1, 0, 0, 1.0])
  linear = interpolate_traces("linear", x[None], mask[None])[0]
  np.testing.assert_allclose(linear, x)
  nearest = interpolate_traces("nearest", x[None], mask[None])[0]
  np.testing.assert_array_equal(nearest[1], x[0])
  np.testing.assert_array_equal(nearest[2], x[3])
  noisy = x + 0.1
  assert snr_db(x[None], noisy[None])[0] == pytest.approx(
      snr_db(x[None] + 5.0, noisy[None] + 5.0)[0])


# ----- Lorenz-96 and SEEDS -----

def test_lorenz96_advection_conserves_energy_and_ensembles_are_reliable():
  x = jax.random.normal(jax.random.PRNGKey(0), (40,))
  # Without damping and forcing the quadratic term conserves sum x^2 / 2.
  advection = lorenz96_tendency(x, 0.0) + x
  assert abs(float(jnp.dot(x, advection))) < 1e-4
  ens = lorenz96_ensembles(0, 64, 16, dim=20, lead_time=1.0)
  assert ens.members.shape == (64, 16, 20) and ens.truth.shape == (64, 20)
  scores, counts = ensemble_scores(ens.members, ens.truth)
  assert 0.8 < scores["spread_skill"] < 1.25     # The truth is one more member.
  assert counts.sum() == 64 * 20
  assert scores["spread"] > 0.3


def test_seed_conditions_are_order_free_and_draws_pick_distinct_members():
  seeds = jax.random.normal(jax.random.PRNGKey(0), (5, 2, 3))
  np.testing.assert_allclose(seed_condition(seeds), seed_condition(seeds[:, ::-1]))
  members = jnp.arange(4 * 6 * 1, dtype=jnp.float32).reshape(4, 6, 1)
  draw = member_sampler(members, 2)
  x, cond = draw(jax.random.PRNGKey(1), 200)
  assert x.shape == (200, 1) and cond.shape == (200, 2)
  date = x[:, 0] // 6
  assert np.all(np.abs(cond[:, 0] - (date * 6 + 2.5)) <= 2.5)   # Seeds of the same date.
  assert np.all(cond[:, 1] > 0)                                  # Two different seeds.


# ----- the order book and TRADES -----

def test_order_book_executes_market_orders_through_the_levels():
  book = OrderBook(num_ticks=64, rng=np.random.default_rng(0))
  best_ask, volume = book.best_ask(), book.ask.sum()
  first = book.ask[best_ask]
  assert book.apply(2, 0, first + 1) == first + 1      # A market buy walks one level.
  assert book.best_ask() > best_ask and book.ask.sum() == volume - first - 1
  bid = book.best_bid()
  book.apply(0, 0, 3)                                  # Improves the bid inside the spread.
  assert book.best_bid() == book.best_ask() - 1 and book.best_bid() > bid
  book.apply(3, 0, 10 ** 6)                            # Empties the bid side: refilled.
  assert book.best_bid() is not None and book.best_bid() < book.best_ask()


def test_order_flow_has_heavy_tails_and_volatility_clustering():
  stream = simulate_order_flow(0, 6000)
  assert np.all(np.diff(stream.times) > 0) and np.all(stream.spreads >= 1)
  facts = stylised_facts(stream, interval=20)
  assert facts["excess_kurtosis"] > 1.0
  assert facts["abs_return_acf"][0] > 0.05
  scaler = OrderScaler.fit(stream)
  kinds, offsets, sizes, waits = scaler.decode(
      scaler.encode(stream.kinds, stream.offsets, stream.sizes,
                    np.diff(np.concatenate([[0.0], stream.times]))))
  np.testing.assert_array_equal(kinds, stream.kinds)
  np.testing.assert_array_equal(sizes, stream.sizes)
  orders, conditions = training_pairs(stream, scaler, 8)
  assert orders.shape == (5992, ORDER_DIM) and conditions.shape == (5992, book_dim(8))
  resampled = resample_orders(stream, 3000, np.random.default_rng(1))
  assert predictive_score(stream, resampled) > 0


def test_order_transformer_reads_its_history_and_refuses_a_wrong_condition():
  model = build_model("order_transformer", (ORDER_DIM,), history=4, width=16, depth=1,
                      num_heads=2, cond_dim=book_dim(4))
  params = model.init(jax.random.PRNGKey(0))
  x = jnp.zeros((3, ORDER_DIM))
  cond = jax.random.normal(jax.random.PRNGKey(1), (3, book_dim(4) + 1))
  out = model.apply(params, x, 0.5, cond)
  assert out.shape == (3, ORDER_DIM)
  moved = model.apply(params, x, 0.5, cond.at[:, 0].add(1.0))
  assert float(jnp.max(jnp.abs(out - moved))) > 0
  with pytest.raises(ConfigError, match="model.cond_dim must be"):
    build_model("order_transformer", (ORDER_DIM,), history=4, cond_dim=10)
