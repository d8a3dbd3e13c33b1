"""D2NWG on a zoo of MLP classifiers: weights generated for a task from its data set.

  python -m experiments.main --config=configs/datatypes/d2nwg.py \
      --workdir=workdirs/d2nwg

8 synthetic classification tasks (8 features, 3 classes;
`diffjax.data.classification_tasks`); the zoo: 10 MLPs (8-32-3) per task trained for 40
epochs from one shared initialisation (zoo.shared_init=False: each its own; the README
shows what that costs), or your own zoo: --config.data.zoo=zoo.npz in the format of
`diffjax.weights.zoo`. The 387 weights of each network, flattened and normalised per
layer, are modelled by a residual MLP trained with the EDM objective, conditioned on the
task's data-set embedding (per-class means of projected features). Evaluation draws 8
networks per task and reports held-out accuracy without training and after one epoch of
fine-tuning, against the zoo and random initialisation (experiments/d2nwg.py). `:tiny`
runs in seconds.
"""
import ml_collections

from configs.common import parse_arg, shrink_to_tiny
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = engine_config()
  config.experiment = "d2nwg"
  config.data = ml_collections.ConfigDict(dict(
      zoo="", num_tasks=8, models_per_task=10, num_features=8, num_classes=3,
      hidden=(32,), embed_dim=4))
  config.zoo = ml_collections.ConfigDict(dict(epochs=40, batch_size=32, learning_rate=1e-2,
                                                shared_init=True))
  config.finetune = ml_collections.ConfigDict(dict(epochs=1))
  config.path = ml_collections.ConfigDict(dict(name="edm", sigma_min=0.002,
                                               sigma_max=80.0, rho=7.0))
  config.objective = ml_collections.ConfigDict(dict(name="edm", sigma_data=1.0,
                                                    p_mean=-1.2, p_std=1.2))
  config.model = ml_collections.ConfigDict(dict(name="residual_mlp", width=512, depth=4,
                                                activation="relu", layer_norm=True,
                                                cond_dim=12))
  config.train.update(batch_size=64, num_steps=3000, steps_per_call=250, log_every=500,
                      eval_every=3000, checkpoint_every=3000)
  config.optim.update(learning_rate=1e-3, warmup_steps=100)
  config.sample = ml_collections.ConfigDict(dict(solver="edm_churn", num_steps=32,
                                                 s_churn=5.0, grid="edm"))
  config.eval.draws = 8
  if tiny:
    shrink_to_tiny(config, num_steps=10, batch_size=16, sample_steps=2)
    config.model.update(width=32, depth=2)
    config.train.eval_every = 10
    config.data.update(num_tasks=2, models_per_task=2, hidden=(4,))
    config.zoo.epochs = 2
    config.eval.draws = 2
  return config
