"""Plug-and-play conditioning and editing of digits with a trained prior at sampling time
(family `plug_and_play`); eval.studies (`STUDIES`) picks what evaluation measures:
  steered  Steered Diffusion against DPS and reconstruction guidance (below);
  cow      Cyclic One-Way Diffusion against SDEdit (below).

The engine trains what Steered Diffusion may steer with besides a known degradation: one
`LearnedInverseModel` per degradation of eval.degradations (`DEGRADATIONS`:
super_resolution, by eval.factor; inpainting of the centre; channel_mixing, the luma of
three digits stacked as the R, G, B channels of one colour image), fitted to pairs
(x, A(x)) of training digits (stacked likewise). Evaluation loads the trained digits run
eval.prior_workdir (`diffjax.runs.load`, its unconditional model, eval.num_steps DDIM
steps; for channel mixing one draw is three of its samples, the product prior) and
restores eval.num_restored held-out images, eval.draws times each, from their observations
y = A(x) with every method of eval.methods (and the unguided prior, `..._prior`): a name
of config.methods, a sample.guidance section of a restoring method (dps, reconstruction,
steered) whose inverse_model = "learned" makes Steered Diffusion steer with the learned f
instead of A.
Per degradation and method: the PSNR of one draw (`psnr_<degradation>_<method>`; on the
hidden centre for inpainting, the whole image otherwise), the mean PSNR over draws
(`..._all_draws`) and the PSNR of the mean of the draws (`..._mean_of_draws`), the proxy
Fréchet distance of the draws' single digits to the test digits (`frechet_proxy_...`);
the same for the observations shown as images (`..._observed`), and a grid per
degradation.

COW (`diffjax.plug_and_play.cow`, learning-free: the trained inverse models are unused) on
eval.num_restored test digits: the seed is the square patch eval.patch = (top, left,
size) of each digit, pasted on a blank (-1) canvas; COW (eval.cow: cycle_start t_a,
cycle_end t_b, cycles) and SDEdit from each start of eval.sdedit_starts generate the
whole digit from the prior's unconditional model (eval.num_steps DDIM steps): the PSNR of
the patch against the seed (`patch_psnr_<method>`), the proxy Fréchet distance of the
whole images to the test digits (`frechet_proxy_<method>`), a grid.
"""
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from diffjax import image_metrics, image_plots, runs
from diffjax.data import ImageStream, load_image_dataset
from diffjax.data.digits import DIGITS_NUM_LEVELS, digits_arrays
from diffjax.data.images import dequantize
from diffjax.errors import ConfigError
from diffjax.guidance import GUIDANCE_METHODS, check_guidance_section
from diffjax.guidance.reconstruction import check_operator
from diffjax.plug_and_play import (DEGRADATIONS, LearnedInverseModel, check_cycle,
                                   check_patch, cyclic_one_way, inverse_model_fit_loss,
                                   patch_mask, sdedit, stack_views, unstack_views)
from diffjax.registry import Registry
from diffjax.restoration import psnr
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys

STUDIES = Registry("plug-and-play study")
PLUG_AND_PLAY_KEYS = (
    Key("eval.studies", "names", names=lambda: STUDIES.names()),
    Key("eval.patch", "ints", 0, meaning="the seed patch (top, left, size)"),
    Key("eval.cow.cycle_start", "float", 0.0, 1.0),
    Key("eval.cow.cycle_end", "float", 0.0, 1.0),
    Key("eval.cow.cycles", "int", 0),
    Key("eval.sdedit_starts", "floats", 0.0, 1.0, open_high=True),
    Key("eval.degradations", "names", names=DEGRADATIONS.names),
    Key("eval.factor", "int", 1, meaning="super-resolution's downsampling factor"),
    Key("eval.num_restored", "int", 1, meaning="held-out digits restored"),
    Key("eval.draws", "int", 1, meaning="draws per digit"),
    Key("eval.num_steps", "int", 1, meaning="DDIM steps of the prior"),
    Key("inverse_model.hidden_dim", "int", 1),
)


def load_prior(workdir, shape):
  """The digits run in `workdir` (a `runs.Run`), refused unless it samples images of
  `shape`."""
  if not workdir:
    raise ConfigError("eval.prior_workdir is empty: give the workdir of a trained digits "
                      "run (configs/guidance/digits.py).")
  run = runs.load(workdir)
  if run.pipeline is None or tuple(run.spec.shape) != tuple(shape):
    raise ConfigError(f"eval.prior_workdir={workdir!r} holds a "
                      f"{run.config.get('experiment')!r} run; a digits run of images "
                      f"{tuple(shape)} is needed.")
  if run.path.gaussian is None:
    raise ConfigError(f"eval.prior_workdir={workdir!r} is a run on the "
                      f"{run.path.name!r} path; plug-and-play sampling needs a Gaussian "
                      "path (rectified_flow, vp, ...).")
  return run


def check_methods(config):
  """Each name of eval.methods is a section of config.methods with a restoring guidance
  method and inverse_model "operator" or "learned"."""
  for name in config.eval.methods:
    if name not in config.methods:
      raise ConfigError(f"eval.methods names {name!r}, which is not a section of "
                        f"config.methods; valid: {', '.join(config.methods)}.")
    section = dict(config.methods[name])
    inverse = section.pop("inverse_model", "operator")
    if inverse not in ("operator", "learned"):
      raise ConfigError(f"methods.{name}.inverse_model must be 'operator' or 'learned'; "
                        f"got {inverse!r}.")
    method = section.get("method", "none")
    if not GUIDANCE_METHODS.get(method).restores:
      valid = [m for m in GUIDANCE_METHODS.names() if GUIDANCE_METHODS.get(m).restores]
      raise ConfigError(f"methods.{name}.method={method!r} does not restore from "
                        f"measurements; valid: {', '.join(valid)}.")
    check_guidance_section(section, False, "ddim")


def restoration_scores(draws, truth, scored, name, views=1):
  """draws (K, N, H, W, C) of N images truth (N, H, W, C) scored on the pixels `scored`
  (H, W, C): PSNR of one draw, over draws, of their mean; proxy FD of every draw's
  digits (`views` digits stacked as channels per image)."""
  reference, _ = image_metrics.digits_reference_images("test")
  digits = unstack_views(jnp.asarray(draws.reshape((-1,) + draws.shape[2:])), views)
  return {f"psnr_{name}": float(np.mean(psnr(draws[0], truth, scored))),
          f"psnr_{name}_all_draws": float(np.mean([np.mean(psnr(d, truth, scored))
                                                   for d in draws])),
          f"psnr_{name}_mean_of_draws": float(np.mean(psnr(draws.mean(0), truth, scored))),
          f"frechet_proxy_{name}": float(image_metrics.digits_frechet_distance(
              np.asarray(digits), reference))}


class Setting(NamedTuple):
  """What every study reads: the config, the prior's image shape, the prior run (loaded
  once), held-out digits `truth` (N, H, W, C) (N = eval.num_restored times the most views
  of a degradation), the degradations' operators (on their image shapes) and learned
  nets."""
  config: Any
  shape: tuple
  prior: Callable
  truth: np.ndarray
  operators: dict
  nets: dict


class Study(NamedTuple):
  """A registered study: check(config, shape) refuses bad values before anything runs;
  evaluate(setting, params, key) -> (metrics, figures)."""
  check: Callable
  evaluate: Callable


def build_task(config) -> Task:
  """Builds the task; bad values and a bad prior workdir fail here, before any workdir is
  touched."""
  check_keys(config, PLUG_AND_PLAY_KEYS)
  source = load_image_dataset(config.data.name, image_size=config.data.image_size,
                              data_dir=config.data.data_dir, split="train")
  shape = tuple(source.image_shape)
  studies = tuple(STUDIES.get(name) for name in config.eval.studies)
  for study in studies:
    study.check(config, shape)
  names = tuple(config.eval.degradations)
  entries = {d: DEGRADATIONS.get(d) for d in names}
  operators = {d: e.operator(e.image_shape(shape), config.eval.factor)
               for d, e in entries.items()}
  probe = lambda d: jax.ShapeDtypeStruct((1,) + entries[d].image_shape(shape), jnp.float32)
  nets = {d: LearnedInverseModel(tuple(jax.eval_shape(a, probe(d)).shape[1:]),
                                 config.inverse_model.hidden_dim)
          for d, a in operators.items()}
  prior = functools.cache(lambda: load_prior(config.eval.prior_workdir, shape))
  prior()
  stream = ImageStream(source, config.train.batch_size, seed=config.seed,
                       random_flip=False, dequantize=True)
  test, _ = digits_arrays("test")
  views = max([e.views for e in entries.values()] + [1])
  truth = np.asarray(dequantize(test[:config.eval.num_restored * views], DIGITS_NUM_LEVELS))
  setting = Setting(config, shape, prior, truth, operators, nets)

  def init_params(key):
    return {d: net.init(jax.random.fold_in(key, i), jnp.zeros(probe(d).shape))
            for i, (d, net) in enumerate(nets.items())}

  def images(x, views):
    return stack_views(x[:len(x) // views * views], views)

  def loss(params, key, shard, step, batch):
    del key, step
    x = shard(batch["image"])
    losses = {d: inverse_model_fit_loss(nets[d].apply, params[d],
                                        images(x, entries[d].views), operators[d])
              for d in names}
    return sum(losses.values()), {f"fit_{d}": v for d, v in losses.items()}

  def evaluate(params, key):
    values, figures = {}, {}
    for i, study in enumerate(studies):
      v, f = study.evaluate(setting, params, jax.random.fold_in(key, i))
      values.update(v)
      figures.update(f)
    return values, figures

  def sample(params, key):
    return {}, evaluate(params, key)[1]

  return Task(init_params=init_params, loss=loss, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size, data=stream.iterate)


def _steered_check(config, shape):
  del shape
  check_methods(config)


def _steered(setting, params, key):
  config, shape = setting.config, setting.shape
  draws = config.eval.draws
  run = setting.prior()

  def truth_of(views):
    """The held-out images (N, H, W, views * C) restored under a degradation of `views`."""
    return np.asarray(stack_views(
        jnp.asarray(setting.truth[:config.eval.num_restored * views]), views))

  @functools.cache
  def restorer(degradation, name):
    """A compiled (prior params, inverse-model params, key) -> draws of method `name`
    (None: the unguided prior), images (draws * N, H, W, views * C)."""
    section = {} if name is None else config.methods[name].to_dict()
    learned = section.pop("inverse_model", "operator") == "learned"
    operator, views = setting.operators[degradation], DEGRADATIONS.get(degradation).views
    truth = truth_of(views)
    y = jnp.tile(operator(jnp.asarray(truth)), (draws,) + (1,) * len(shape))
    state_shape = (len(y) * views,) + shape
    pipeline = run.pipeline.with_sampler("ddim", config.eval.num_steps)

    @jax.jit
    def restore(prior_params, params, key):
      image_operator = operator
      if learned:
        image_operator = lambda x: setting.nets[degradation].apply(params[degradation], x)
      steer = lambda x: image_operator(stack_views(x, views))
      check_operator(steer, state_shape, y)
      x = pipeline.generate(prior_params, key, state_shape[0], None, guidance=section,
                            measurements=y, operator=steer, state_shape=state_shape).x
      return stack_views(jnp.clip(x, -1, 1), views)
    return restore

  values, figures = {}, {}
  for degradation in config.eval.degradations:
    entry = DEGRADATIONS.get(degradation)
    truth = truth_of(entry.views)
    image_shape = truth.shape[1:]
    scored = entry.scored(image_shape)
    observed = entry.as_image(
        np.asarray(setting.operators[degradation](jnp.asarray(truth))), image_shape)
    values.update(restoration_scores(observed[None], truth, scored,
                                     f"{degradation}_observed", entry.views))
    shown = [observed]
    for i, name in enumerate((None,) + tuple(config.eval.methods)):
      x = np.asarray(parallel.to_host(restorer(degradation, name)(
          run.params, params, jax.random.fold_in(key, i))))
      x = x.reshape((draws,) + truth.shape)
      values.update(restoration_scores(x, truth, scored, f"{degradation}_{name or 'prior'}",
                                       entry.views))
      shown.append(x[0])
    rows = min(10, len(truth))
    figures[f"restored_{degradation}"] = image_plots.sample_grid_figure(
        np.concatenate([a[:rows] for a in shown + [truth]]), num_columns=rows,
        title=f"{degradation}: observed / prior / {' / '.join(config.eval.methods)} / truth")
  return values, figures


def _cow_check(config, shape):
  top, left, size = (list(config.eval.patch) + [None] * 3)[:3]
  if len(config.eval.patch) != 3:
    raise ConfigError(f"eval.patch is (top, left, size); got {tuple(config.eval.patch)}.")
  check_patch(top, left, size, shape)
  cow = config.eval.cow
  check_cycle(cow.cycle_start, cow.cycle_end, cow.cycles)


def _cow(setting, params, key):
  del params
  config, shape = setting.config, setting.shape
  truth = setting.truth[:config.eval.num_restored]
  run = setting.prior()
  mask = patch_mask(*config.eval.patch, shape)[None]
  seed = jnp.asarray(truth)
  canvas = seed * mask - (1 - mask)
  model = run.pipeline.conditional_model(run.params, None, len(truth))
  fields = model.fields_of(model.null)
  steps = config.eval.num_steps
  k_source, k_run = jax.random.split(key)
  x0 = run.path.source_sample(k_source, seed.shape)
  cow = config.eval.cow
  methods = {"cow": jax.jit(lambda k: cyclic_one_way(
      "ddim", fields, run.path, seed, mask, x0, k, num_steps=steps,
      cycle_start=cow.cycle_start, cycle_end=cow.cycle_end, cycles=cow.cycles))}
  for start in config.eval.sdedit_starts:
    methods[f"sdedit_t{start:g}"] = jax.jit(functools.partial(
        lambda k, start: sdedit("ddim", fields, run.path, canvas, x0, k, num_steps=steps,
                                start=start), start=start))
  reference, _ = image_metrics.digits_reference_images("test")
  values, shown = {}, [np.asarray(canvas)]
  patch = np.broadcast_to(np.asarray(mask[0]), shape)
  for name, method in methods.items():
    x = np.clip(np.asarray(parallel.to_host(method(k_run))), -1, 1)
    values[f"patch_psnr_{name}"] = float(np.mean(psnr(x, truth, patch)))
    values[f"frechet_proxy_{name}"] = float(image_metrics.digits_frechet_distance(
        x, reference))
    shown.append(x)
  values["frechet_proxy_canvas"] = float(image_metrics.digits_frechet_distance(
      np.asarray(canvas), reference))
  rows = min(10, len(truth))
  figure = image_plots.sample_grid_figure(
      np.concatenate([a[:rows] for a in shown + [truth]]), num_columns=rows,
      title=f"seed on canvas / {' / '.join(methods)} / truth")
  return values, {"cow": figure}


STUDIES.register("steered", Study(_steered_check, _steered))
STUDIES.register("cow", Study(_cow_check, _cow))
