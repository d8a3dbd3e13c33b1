"""Trained runs as objects: what a workdir learned, ready to sample from or to serve as a
teacher, a prior, a target or a model to adapt.

  run = diffjax.runs.load("workdirs/quickstart")        # a local directory or gs://...
  x = run.sample(jax.random.PRNGKey(0), 1000)           # the run's own sampler (token ids
                                                        # (1000, L) for a text run)
  fields = run.fields()                                  # velocity, score, data, noise
  run.config, run.step, run.params, run.path, run.objective, run.model, run.spec

`from_diffusers(folder)` wraps a diffusers checkpoint (a UNet2DModel or DiTTransformer2DModel
folder with its scheduler config, `diffjax.interop.diffusers`) as a run at step 0: its
pipeline is the discrete DDPM path of the scheduler, score matching with its prediction
type, and the converted network, sampled with DDIM (50 steps) unless told otherwise.

`load` reads the config the run recorded (config.json), what the engine recorded beside it
(run.json: the data's shape and classes, the run's length) and one checkpoint, with no
training code: any run of a pipeline family (toy2d, images, guidance, diagnostics,
timeseries, text) rebuilds its `diffjax.pipeline.Pipeline` from the config. A run that
fine-tuned another run's network (few_shot) recorded the source's config beside its own
(`adapted_record`) and rebuilds the source's pipeline around its adapted parameters. Runs
of other families (bridges, graphs, prospect's spectra) load their config and parameters
only.
"""
import dataclasses
from typing import Any, Optional

import jax
import ml_collections

from diffjax.errors import ConfigError
from diffjax.interop import diffusers as diffusers_interop
from diffjax.pipeline import DataSpec, Pipeline, build_pipeline, pipeline_record  # pylint: disable=unused-import
from diffjax.train import storage
from diffjax.train.checkpoint import CheckpointError, Checkpointer
from diffjax.train.workdir import read_run_files


class RunError(ConfigError):
  """A workdir that holds no usable run: missing, unfinished, damaged or of another kind."""


@dataclasses.dataclass(frozen=True)
class Run:
  """A trained run: its config, parameters at `step` and the pipeline they plug into.

  Attributes:
    workdir: where it was loaded from.
    config: the run's recorded config (an ml_collections.ConfigDict).
    step: the step of the loaded checkpoint; num_steps: the run's length.
    params: the EMA or raw parameters (`load`'s use_ema).
    pipeline: the run's `Pipeline`, or None for a family without one.
    pipeline_config: the config the pipeline was built from where it is not `config`
      (an adapted run's source config, `adapted_record`); None otherwise.
  """
  workdir: str
  config: ml_collections.ConfigDict
  step: int
  num_steps: int
  params: Any
  pipeline: Optional[Pipeline]
  pipeline_config: Optional[ml_collections.ConfigDict] = None

  @property
  def finished(self) -> bool:
    return self.step >= self.num_steps

  def _require_pipeline(self) -> Pipeline:
    if self.pipeline is None:
      raise RunError(f"The run in {self.workdir} is a {self.config.get('experiment')!r} "
                     "run, which has no pipeline (path, objective, fields); use its "
                     "config and params.")
    return self.pipeline

  @property
  def spec(self) -> DataSpec:
    return self._require_pipeline().spec

  @property
  def path(self):
    return self._require_pipeline().path

  @property
  def objective(self):
    return self._require_pipeline().objective

  @property
  def model(self):
    return self._require_pipeline().model

  def fields(self, cond=None):
    """The run's `Fields` conditioned on class labels (B,) or conditioning arrays (B, d);
    None: the unconditional model (the null class of a conditional run)."""
    return self._require_pipeline().fields(self.params, cond)

  def generate(self, key, num_samples, labels=None, **options):
    """A `Solution` (x (num_samples, *shape), trajectory, nfe) of the run's sampler
    (config.sample); options as `Pipeline.generate` (return_trajectory, guidance and what
    a guidance method needs)."""
    return self._require_pipeline().generate(self.params, key, num_samples, labels,
                                              **options)

  def sample(self, key, num_samples, labels=None, **options):
    """(num_samples, *shape) samples of the run's sampler (see `generate`)."""
    return self.generate(key, num_samples, labels, **options).x

  def with_sampler(self, solver=None, num_steps=None, **sampler_options) -> "Run":
    """The same run sampled with another sampler (a registered name), step count or
    sampler options (`Pipeline.with_sampler`)."""
    pipeline = self._require_pipeline().with_sampler(solver, num_steps, **sampler_options)
    return dataclasses.replace(self, pipeline=pipeline)


def _data_spec(record) -> Optional[DataSpec]:
  spec = (record or {}).get("data_spec")
  if spec is None:
    return None
  return DataSpec(tuple(spec["shape"]), spec.get("num_classes", 0), spec.get("cond_dim", 0),
                  spec.get("vocab_size", 0))


def load(workdir: str, *, step: Optional[int] = None, use_ema: Optional[bool] = None,
         allow_unfinished: bool = False) -> Run:
  """Loads the run in `workdir` (local or gs://) without training code.

  Args:
    workdir: the run's workdir.
    step: the checkpoint to load (default: the newest that restores).
    use_ema: EMA (True) or raw (False) parameters; default: the run's eval.use_ema.
    allow_unfinished: accept a run whose checkpoint is short of its length (a run still
      training, or stopped early); by default such a run is refused.

  Raises:
    RunError (a ConfigError: one line on the command line) for a workdir without a run,
    without a checkpoint, unfinished, or written before diffjax recorded run.json.
  """
  if not storage.workdir_path(workdir).is_dir():
    raise RunError(f"{workdir} does not exist: no run to load.")
  config_dict, record = read_run_files(workdir)
  config = ml_collections.ConfigDict(config_dict)
  if record is None:
    raise RunError(f"{workdir} has no run.json (the record of the data's shape and the "
                   "run's length that training writes): it holds no finished run of this "
                   "diffjax version; retrain it.")
  checkpointer = Checkpointer(workdir, read_only=True)
  try:
    if not checkpointer.steps():
      raise RunError(f"The run in {workdir} has no checkpoint yet: train it first.")
    try:
      saved_step, saved = checkpointer.restore_as_saved(step)
    except CheckpointError as error:
      raise RunError(str(error)) from None
  finally:
    checkpointer.close()
  num_steps = int(record["num_steps"])
  if saved_step < num_steps and not allow_unfinished:
    raise RunError(f"The run in {workdir} is unfinished: its checkpoint is at step "
                   f"{saved_step} of {num_steps}. Train it to the end (rerun its command) "
                   "or load it with allow_unfinished=True.")
  if use_ema is None:
    use_ema = config.get("eval", {}).get("use_ema", True)
  params = jax.tree.map(jax.numpy.asarray, saved["ema_params" if use_ema else "params"])
  spec = _data_spec(record)
  pipeline_config = record.get("pipeline_config")
  if pipeline_config is not None:
    pipeline_config = ml_collections.ConfigDict(pipeline_config)
  pipeline = (build_pipeline(config if pipeline_config is None else pipeline_config, spec)
              if spec is not None else None)
  return Run(str(workdir), config, saved_step, num_steps, params, pipeline, pipeline_config)


def adapted_record(source: Run) -> dict:
  """What a task fine-tuning `source`'s network records in run.json (`Task.record`):
  the data's spec and the source's config (its path, objective, model and sampler, which
  the adapting run's own config lacks), so that `load` rebuilds the source's pipeline
  around the adapted parameters; and where the source was loaded from. An adapted
  source passes its own source's config on."""
  pipeline_config = (source.config if source.pipeline_config is None
                     else source.pipeline_config)
  return {"data_spec": dataclasses.asdict(source.spec),
          "pipeline_config": pipeline_config.to_dict(),
          "adapted_from": source.workdir}


def from_diffusers(folder: str, *, solver: str = "ddim", num_steps: int = 50,
                   dtype: str = "float32") -> Run:
  """A diffusers model folder (or pipeline folder) with its scheduler config as a `Run`
  (module docstring): run.sample, run.fields, run.generate(..., guidance=...) as for a
  trained run; run.config records the pipeline it builds."""
  config, (shape, num_classes) = diffusers_interop.run_config(
      folder, solver=solver, num_steps=num_steps, dtype=dtype)
  pipeline = build_pipeline(config, DataSpec(shape, num_classes))
  params = pipeline.model.init(jax.random.PRNGKey(0))
  return Run(str(folder), config, 0, 0, params, pipeline)
