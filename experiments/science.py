"""Diffusion models on simulated scientific data: SeisFusion, SEEDS, PaD-TS and TRADES.

build_seismic  SeisFusion ("SeisFusion: Constrained Diffusion Model with Input Guidance
               for 3D Seismic Data Interpolation and Reconstruction", 2024) on 2D inline
               sections of layered velocity volumes with a fault (`diffjax.data.seismic`,
               or a user's volumes: data.name=file, data.file=volumes.npz). A model of
               sections (nx traces, nz depths) is trained; evaluation drops a fraction of
               the traces of held-out volumes (each of eval.missing, pattern
               data.mask_kind, or a user's mask: data.mask_file) and reconstructs them by
               input guidance (sample.guidance, method "input": the recorded traces
               re-imposed after every step), scoring the SNR (dB, pooled over the
               sections: `pooled_snr_db`) of one draw and of the mean of eval.num_draws
               draws against the linear and nearest-trace
               interpolations: `snr_<estimate>_<percent missing>`. With
               eval.volume_axes (SeisFusion's 2D-slice option in 3D: "x", "y" or both)
               the held-out volumes are restored whole instead, every section along
               each axis by input guidance, the axes averaged trace by trace
               (`diffjax.science.reconstruct_volumes`), and scored per volume against
               the 3D linear and nearest-trace interpolations in (x, y):
               `snr_volume_<estimate>_<percent>`, `snr_volume_diffusion_mean_<axis>_<p>`
               (one axis alone), `known_change_volume_<p>`, plots/volume.
build_seeds    SEEDS ("SEEDS: Emulation of Weather Forecast Ensembles with Diffusion
               Models", Li et al. 2024) on Lorenz-96 ensembles (`diffjax.data.lorenz96`):
               a model of one member given the mean and std of data.num_seeds seed
               members of its date (`diffjax.science.ensembles`; condition dropout makes
               it also the unconditional emulator). Evaluation on held-out dates: the K
               seeds plus eval.generated members against the same number of true members
               and the K seeds alone, by CRPS, spread-skill ratio and rank histograms
               (`crps_<ensemble>`, `spread_skill_<ensemble>`, plots/rank_histograms).
               data.residual: the model generates a member minus its seeds' mean.
build_padts    PaD-TS ("Population Aware Diffusion for Time Series Generation", Li et al.
               2025) on regime-switching VAR series with known cross-correlations
               (`diffjax.data.correlated_series`): a model of whole series (L, C),
               trained with the denoising loss plus population.weight times the
               population term (`diffjax.timeseries.population_aware_loss`; weight 0: the
               same model without it), scored on held-out series by the cross-correlation
               distribution shift `correlation_shift` and the value distribution shift
               `value_shift` (marginal quality); `*_floor` are those of as many real
               training series (the sampling noise of the estimate).
build_trades   TRADES ("TRADES: Generating Realistic Market Simulations with Diffusion
               Models", Berti et al. 2025) on the limit-order-book simulator
               (`diffjax.data.order_book`): a model of the next order given the last
               data.history orders and the book (`diffjax.science.order_flow`), trained
               on one simulated stream; evaluation simulates eval.num_paths markets of
               eval.num_events events autoregressively from the start of a held-out real
               stream, beside the resampling baseline (real orders drawn i.i.d.) and
               further real streams of the simulator ("real"): the predictive score
               (`predictive_<stream>`: MAE in ticks on the held-out stream of a ridge
               forecaster fitted on that stream; `predictive_no_change` predicts 0) and
               the stylised facts (`kurtosis_<stream>` excess kurtosis of returns over
               eval.interval events, `abs_acf_<stream>` and `return_acf_<stream>` their
               autocorrelations at lags 1-5 averaged; plots/stylised_facts).
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.data.correlated_series import correlated_series
from diffjax.data.lorenz96 import lorenz96_ensembles
from diffjax.data.order_book import simulate_order_flow
from diffjax.data.seismic import (MASK_KINDS, layered_volumes, load_trace_mask,
                                  load_volumes, trace_mask)
from diffjax.errors import ConfigError
from diffjax.pipeline import DataSpec, build_pipeline, pipeline_record, pipeline_task
from diffjax.science import (ORDER_DIM, SLICE_AXES, OrderScaler, book_dim,
                             ensemble_scores, interpolate_traces, interpolate_volumes,
                             member_sampler, no_change_mae, plots, pooled_facts,
                             pooled_snr_db, predictive_score, reconstruct_volumes,
                             resample_orders, seed_condition, simulate_market,
                             stylised_facts, training_pairs, volume_slices)
from diffjax.timeseries import correlation_shift, population_aware_loss, value_shift
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

SEISMIC_SOURCES = ("layered", "file")
SEISMIC_KEYS = (
    Key("data.name", "name", names=lambda: SEISMIC_SOURCES),
    Key("data.shape", "ints", 4, meaning="(nx, ny, nz) of simulated volumes"),
    Key("data.num_volumes", "int", 1, meaning="training volumes"),
    Key("data.test_volumes", "int", 1, meaning="held-out volumes"),
    Key("data.mask_kind", "name", names=lambda: MASK_KINDS),
    Key("eval.missing", "floats", 0.0, 1.0, open_high=True,
        meaning="fractions of missing traces"),
    Key("eval.num_sections", "int", 1, meaning="held-out sections reconstructed"),
    Key("eval.num_draws", "int", 1, meaning="reconstructions per section"),
    Key("eval.volume_axes", "names", names=lambda: SLICE_AXES,
        meaning="slicing axes of a 3D reconstruction; empty: 2D sections"),
)


def _seismic_volumes(config):
  """(train volumes, held-out volumes) (V, nx, ny, nz) of config.data."""
  data = config.data
  if data.name == "file":
    volumes = load_volumes(data.get("file", ""))
    if len(volumes) < 2:
      raise ConfigError(f"{data.file} holds {len(volumes)} volume; training and held-out "
                        "sections need at least 2.")
    split = max(1, len(volumes) - data.test_volumes)
    return volumes[:split], volumes[split:]
  shape = tuple(data.shape)
  if len(shape) != 3:
    raise ConfigError(f"data.shape={shape} must be (nx, ny, nz).")
  return (layered_volumes(config.seed, data.num_volumes, shape),
          layered_volumes(config.seed + 1, data.test_volumes, shape))


def build_seismic(config):
  check_keys(config, SEISMIC_KEYS)
  if config.sample.guidance.get("method") != "input":
    raise ConfigError("The seismic reconstruction guides by input guidance; set "
                      "sample.guidance.method=input.")
  train, test = _seismic_volumes(config)
  nx, ny, nz = test.shape[1:]
  axes = tuple(config.eval.get("volume_axes", ()))
  if len(set(axes)) != len(axes):
    raise ConfigError(f"eval.volume_axes={axes} names an axis twice.")
  if "y" in axes and ny != nx:
    raise ConfigError(f"eval.volume_axes={axes} cuts crossline sections of {ny} traces, "
                      f"but the model is of inline sections of {nx}: volumes {(nx, ny, nz)} "
                      "need nx == ny for axis y.")
  user_mask = config.data.get("mask_file", "")
  # A user's mask is checked (one line, before the workdir) against the volumes' shape.
  cases = ({"file": load_trace_mask(user_mask, test.shape[1:])} if user_mask else
           {f"{round(100 * f)}": float(f) for f in config.eval.missing})
  if not cases:
    raise ConfigError("eval.missing is empty and no data.mask_file is given.")
  sections = volume_slices(train, np.ones(train.shape[:3]))[0]
  mean, std = float(sections.mean()), float(sections.std()) or 1.0
  # Image models see a section as (nx, nz, 1); vector models (mlp) as its nx * nz values.
  flat = config.model.name == "mlp"
  shape = (nx * nz,) if flat else (nx, nz, 1)
  windows = jnp.asarray(((sections - mean) / std).reshape(-1, *shape))
  pipeline = build_pipeline(config, DataSpec(shape))

  def draw(key, n):
    return windows[jax.random.randint(key, (n,), 0, windows.shape[0])]

  count, draws = config.eval.num_sections, config.eval.num_draws

  def volume_masks(case):
    """(V, nx, ny) trace masks of case (a fraction missing, or a user's mask)."""
    if isinstance(case, np.ndarray):
      return np.stack([case] * len(test))
    return np.stack([trace_mask(config.seed + 1000 * i + round(100 * case), (nx, ny), case,
                                config.data.mask_kind) for i in range(len(test))])

  def held_out(case):
    """(truth (S, nx, nz), masks (S, nx)) of case (a fraction missing, or a user's mask)."""
    truth, mask = volume_slices(test, volume_masks(case))
    # Sections with at least one recorded trace; evenly spread over the volumes.
    keep = np.flatnonzero(mask.any(1))
    keep = keep[np.linspace(0, len(keep) - 1, min(count, len(keep))).astype(int)]
    return truth[keep], mask[keep]

  def reconstruct(params, key, truth, mask):
    known = np.repeat(np.broadcast_to(mask[..., None], truth.shape), draws, 0)
    observed = np.repeat((truth - mean) / std, draws, 0) * known
    observed, known = observed.reshape(-1, *shape), known.reshape(-1, *shape)
    out = pipeline.generate(params, key, observed.shape[0], observed=jnp.asarray(observed),
                            mask=jnp.asarray(known), state_shape=observed.shape).x
    out = np.asarray(parallel.to_host(out)) * std + mean
    return out.reshape(len(truth), draws, nx, nz)

  def scores(kind, name, truth, recon, known, baselines):
    """The metrics of reconstructions recon (N, draws, ...) of truth (N, ...) whose
    recorded entries are `known`, beside the {name: estimate} baselines."""
    values = {f"known_change_{kind}{name}": float(np.max(np.abs(
        recon[:, 0][known] - truth[known]), initial=0.0)),
              f"snr_{kind}diffusion_{name}": pooled_snr_db(truth, recon[:, 0])}
    if draws > 1:
      values[f"snr_{kind}diffusion_mean_{name}"] = pooled_snr_db(truth, recon.mean(1))
    for b, estimate in baselines.items():
      values[f"snr_{kind}{b}_{name}"] = pooled_snr_db(truth, estimate)
    return values

  def evaluate(params, key):
    values, shown = {}, None
    for i, (name, case) in enumerate(cases.items()):
      truth, mask = held_out(case)
      recon = reconstruct(params, jax.random.fold_in(key, i), truth, mask)
      baselines = {b: interpolate_traces(b, truth, mask) for b in ("linear", "nearest")}
      values.update(scores("", name, truth, recon, mask > 0, baselines))
      if shown is None or name == "50":
        shown = (name, truth[0], mask[0], baselines["linear"][0], recon[0, 0],
                 recon[0].mean(0))
    return values, {"section": plots.section_figure(*shown)}

  def evaluate_volumes(params, key):
    values, shown = {}, None
    for i, (name, case) in enumerate(cases.items()):
      masks = volume_masks(case)
      restore = lambda sections, section_masks, axis, k=jax.random.fold_in(key, i): (
          reconstruct(params, jax.random.fold_in(k, SLICE_AXES.index(axis)), sections,
                      section_masks))
      recon, per_axis = reconstruct_volumes(restore, test, masks, axes)
      baselines = {b: interpolate_volumes(b, test, masks) for b in ("linear", "nearest")}
      values.update(scores("volume_", name, test, recon, masks > 0, baselines))
      if len(axes) > 1:
        for axis, estimate in per_axis.items():
          values[f"snr_volume_diffusion_mean_{axis}_{name}"] = pooled_snr_db(
              test, estimate.mean(1))
      if shown is None or name == "50":
        v = int(np.argmax(test.reshape(len(test), -1).std(1)))    # The most varied volume.
        shown = (name, test[v], masks[v], baselines["linear"][v], recon[v, 0],
                 recon[v].mean(0))
    return values, {"volume": plots.volume_figure(*shown)}

  def sample(params, key):
    truth, mask = held_out(next(iter(cases.values())))
    return {"truth": truth, "mask": mask,
            "reconstructions": reconstruct(params, key, truth, mask)}, {}

  return pipeline_task(pipeline, draw, config.train.batch_size,
                       evaluate=evaluate_volumes if axes else evaluate, sample=sample)


SEEDS_KEYS = (
    Key("data.dim", "int", 4, meaning="Lorenz-96 variables"),
    Key("data.train_dates", "int", 1, meaning="training forecast dates"),
    Key("data.test_dates", "int", 1, meaning="held-out forecast dates"),
    Key("data.members", "int", 2, meaning="members per date"),
    Key("data.num_seeds", "int", 1, meaning="seed members K conditioning the model"),
    Key("data.lead_time", "float", 0.0, open_low=True),
    Key("data.perturbation", "float", 0.0, open_low=True),
    Key("data.residual", "bool"),
    Key("eval.generated", "int", 1, meaning="members generated per date"),
)


def build_seeds(config):
  check_keys(config, SEEDS_KEYS)
  data = config.data
  if data.num_seeds >= data.members:
    raise ConfigError(f"data.num_seeds={data.num_seeds} must be below data.members="
                      f"{data.members}: a training example is a further member of the date.")
  if data.num_seeds + config.eval.generated > data.members:
    raise ConfigError(f"data.num_seeds + eval.generated = "
                      f"{data.num_seeds + config.eval.generated} exceeds data.members="
                      f"{data.members}, the true ensemble they are compared with.")
  options = dict(dim=data.dim, lead_time=data.lead_time, perturbation=data.perturbation)
  train = lorenz96_ensembles(config.seed, data.train_dates, data.members, **options)
  test = lorenz96_ensembles(config.seed + 1, data.test_dates, data.members, **options)
  mean, std = float(train.members.mean()), float(train.members.std())
  scale = lambda x: (x - mean) / std
  dim, seeds = data.dim, data.num_seeds
  pipeline = build_pipeline(config, DataSpec((dim,), cond_dim=2 * dim))
  sampler = member_sampler(scale(train.members), seeds)
  # data.residual: the model generates member - seed mean (same condition), so that an
  # untrained network already centres members on the seeds.
  offset = (lambda cond: cond[:, :dim]) if data.residual else (lambda cond: 0.0)

  def draw(key, n):
    member, cond = sampler(key, n)
    return member - offset(cond), cond
  generated = config.eval.generated
  total = seeds + generated
  test_seeds = scale(test.members[:, :seeds])
  condition = jnp.repeat(seed_condition(test_seeds), generated, 0)

  @jax.jit
  def members(params, key):
    conditional = pipeline.generate(params, key, condition.shape[0], labels=condition).x
    conditional = conditional + offset(condition)
    emulated = pipeline.generate(params, jax.random.fold_in(key, 1), condition.shape[0]).x
    return conditional, emulated

  def evaluate(params, key):
    conditional, emulated = (np.asarray(parallel.to_host(m)) for m in members(params, key))
    shape = (data.test_dates, generated, dim)
    conditional = conditional.reshape(shape) * std + mean
    emulated = emulated.reshape(shape) * std + mean
    ensembles = {
        "seeds": test.members[:, :seeds],
        "seeds_generated": np.concatenate([test.members[:, :seeds], conditional], 1),
        "true": test.members[:, :total],
    }
    if not data.residual:   # Residuals dropped of their condition emulate nothing.
      ensembles["unconditional"] = emulated
    values, histograms = {}, {}
    for name, ensemble in ensembles.items():
      scores, histograms[name] = ensemble_scores(ensemble, test.truth)
      values[f"crps_{name}"] = scores["crps"]
      values[f"spread_skill_{name}"] = scores["spread_skill"]
    values["crps_ratio_seeds_generated_to_true"] = (values["crps_seeds_generated"] /
                                                    values["crps_true"])
    return values, {"rank_histograms": plots.rank_histogram_figure(histograms, total)}

  def sample(params, key):
    conditional, _ = members(params, key)
    return {"generated": np.asarray(parallel.to_host(conditional)) * std + mean,
            "seeds": test.members[:, :seeds], "truth": test.truth}, {}

  return pipeline_task(pipeline, draw, config.train.batch_size, evaluate=evaluate,
                       sample=sample)


PADTS_KEYS = (
    Key("data.length", "int", 2, meaning="time steps per series"),
    Key("data.channels", "int", 2, meaning="channels per series"),
    Key("data.num_series", "int", 2, meaning="training series"),
    Key("data.test_series", "int", 2, meaning="held-out series"),
    Key("data.rho", "float", 0.0, 1.0, open_high=True),
    Key("population.weight", "float", 0.0, meaning="0: the denoising loss alone"),
    Key("population.min_time", "float", 0.0, 1.0, open_high=True),
    Key("eval.num_samples", "int", 2, meaning="generated series scored"),
)


def build_padts(config):
  check_keys(config, PADTS_KEYS)
  data = config.data
  length, channels = data.length, data.channels
  train, _ = correlated_series(config.seed, data.num_series, length, channels, data.rho)
  test, _ = correlated_series(config.seed + 1, data.test_series, length, channels,
                              data.rho)
  mean, std = train.mean((0, 1)), train.std((0, 1))
  flat = jnp.asarray(((train - mean) / std).reshape(len(train), -1))
  pipeline = build_pipeline(config, DataSpec((length * channels,)))
  objective = population_aware_loss(pipeline, config.population.weight, (length, channels),
                                    config.population.min_time)
  batch_size, num_samples = config.train.batch_size, config.eval.num_samples

  def loss(params, key, shard, step):
    del step
    k_pick, k_loss = jax.random.split(key)
    return objective(params, k_loss, shard,
                     flat[jax.random.randint(k_pick, (batch_size,), 0, flat.shape[0])])

  @jax.jit
  def generate(params, key):
    return pipeline.generate(params, key, num_samples).x

  def series(params, key):
    out = np.asarray(parallel.to_host(generate(params, key)))
    return out.reshape(num_samples, length, channels) * std + mean

  floor_sample = train[np.random.default_rng(config.seed).choice(
      len(train), min(num_samples, len(train)), replace=False)]

  def evaluate(params, key):
    generated = series(params, key)
    values = {"correlation_shift": float(correlation_shift(generated, test)),
              "value_shift": float(value_shift(generated, test)),
              "correlation_shift_floor": float(correlation_shift(floor_sample, test)),
              "value_shift_floor": float(value_shift(floor_sample, test))}
    return values, {}

  def sample(params, key):
    return {"series": series(params, key)}, {}

  return Task(init_params=pipeline.model.init, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=batch_size, record=pipeline_record(pipeline))


TRADES_KEYS = (
    Key("data.num_events", "int", 2, meaning="events of the training stream"),
    Key("data.test_events", "int", 2, meaning="events of each held-out real stream"),
    Key("data.history", "int", 1, meaning="past orders conditioning the next"),
    Key("eval.num_paths", "int", 1, meaning="simulated markets"),
    Key("eval.num_events", "int", 2, meaning="events per simulated market"),
    Key("eval.interval", "int", 1, meaning="events per return"),
    Key("eval.window", "int", 1, meaning="events of the forecaster's features"),
    Key("eval.horizon", "int", 1, meaning="events ahead the forecaster predicts"),
)
FACT_LAGS = (1, 2, 3, 4, 5)


def build_trades(config):
  check_keys(config, TRADES_KEYS)
  data, ev = config.data, config.eval
  history = data.history
  if config.model.get("history", history) != history:
    raise ConfigError(f"model.history={config.model.history} must equal data.history="
                      f"{history}: the model reads the orders the data condition on.")
  for name, events in (("data.num_events", data.num_events),
                       ("data.test_events", data.test_events)):
    if events <= history + ev.window + ev.horizon:
      raise ConfigError(f"{name}={events} must exceed data.history + eval.window + "
                        f"eval.horizon = {history + ev.window + ev.horizon}.")
  if ev.num_events < ev.window + ev.horizon + 1:
    raise ConfigError(f"eval.num_events={ev.num_events} must be at least eval.window + "
                      f"eval.horizon + 1 = {ev.window + ev.horizon + 1}.")
  if ev.num_events // ev.interval < max(FACT_LAGS) + 2:
    raise ConfigError(f"eval.num_events={ev.num_events} gives "
                      f"{ev.num_events // ev.interval} returns of eval.interval="
                      f"{ev.interval} events; the autocorrelations need at least "
                      f"{max(FACT_LAGS) + 2}.")
  pipeline = build_pipeline(config, DataSpec((ORDER_DIM,), cond_dim=book_dim(history)))
  stream = simulate_order_flow(config.seed, data.num_events)
  test = simulate_order_flow(config.seed + 1, data.test_events)
  # The simulator's own ground truth: as many real events as the simulated markets hold.
  real = [simulate_order_flow(config.seed + 2 + p, ev.num_events)
          for p in range(ev.num_paths)]
  scaler = OrderScaler.fit(stream)
  orders, conditions = (jnp.asarray(a) for a in training_pairs(stream, scaler, history))

  def draw(key, n):
    pick = jax.random.randint(key, (n,), 0, orders.shape[0])
    return orders[pick], conditions[pick]

  @jax.jit
  def next_orders(params, key, condition):
    return pipeline.generate(params, key, condition.shape[0], labels=condition).x

  def simulate(params, key):
    keys = iter(jax.random.split(key, ev.num_events))
    sampler = lambda c: np.asarray(parallel.to_host(next_orders(
        params, next(keys), jnp.asarray(c, jnp.float32))))
    rng = np.random.default_rng(config.seed)
    return simulate_market(sampler, test, scaler, history, ev.num_events, ev.num_paths,
                           rng)

  def evaluate(params, key):
    rng = np.random.default_rng(config.seed + 1)
    streams = {"real": real, "diffusion": simulate(params, key),
               "resampled": [resample_orders(stream, ev.num_events, rng)
                             for _ in range(ev.num_paths)]}
    values = {"predictive_no_change": no_change_mae(test, ev.window, ev.horizon)}
    facts = {}
    for name, paths in streams.items():
      values[f"predictive_{name}"] = predictive_score(paths, test, ev.window, ev.horizon)
      facts[name] = pooled_facts([stylised_facts(p, ev.interval, FACT_LAGS)
                                  for p in paths])
      values[f"kurtosis_{name}"] = facts[name]["excess_kurtosis"]
      values[f"abs_acf_{name}"] = float(np.mean(facts[name]["abs_return_acf"]))
      values[f"return_acf_{name}"] = float(np.mean(facts[name]["return_acf"]))
      values[f"mean_size_{name}"] = float(np.mean(facts[name]["sizes"]))
    return values, {"stylised_facts": plots.stylised_fact_figure(facts, FACT_LAGS)}

  def sample(params, key):
    paths = simulate(params, key)
    return {field: np.stack([getattr(p, field) for p in paths])
            for field in ("times", "kinds", "offsets", "sizes", "mids", "spreads")}, {}

  return pipeline_task(pipeline, draw, config.train.batch_size, evaluate=evaluate,
                       sample=sample)
