"""Run by test_data_parallel.py in a process with 8 virtual CPU devices."""
import json
import sys

import jax
import numpy as np

import experiments
from diffjax.train.workdir import read_metrics
from tests.helpers import tiny_config

OVERRIDES = {"train.num_steps": 100, "train.eval_every": 0, "train.steps_per_call": 25}


def main(workdir):
  assert jax.device_count() == 8, jax.devices()
  config = tiny_config(**OVERRIDES)
  single = experiments.run(config, f"{workdir}/one", devices=jax.devices()[:1])
  multi = experiments.run(config, f"{workdir}/eight")
  diffs = [float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
           for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(multi.params))]
  scale = max(float(np.max(np.abs(np.asarray(a)))) for a in jax.tree.leaves(single.params))
  # The compiled step must really split the batch: gradients are all-reduced.
  from diffjax.train import build_train_call, build_optimizer, make_data_mesh  # pylint: disable=g-import-not-at-top
  task = experiments.toy2d.build_task(config)
  call = build_train_call(task, build_optimizer(config.optim, 100), 0.999, make_data_mesh())
  hlo = call.lower(multi, 1).compile().as_text()
  # Host-fed batches take the same path through make_array_from_process_local_data.
  from diffjax.train import train  # pylint: disable=g-import-not-at-top
  from tests.helpers import regression_config, regression_task  # pylint: disable=g-import-not-at-top
  fed_one = train(regression_config(), f"{workdir}/fed1", regression_task(),
                  devices=jax.devices()[:1])
  fed_eight = train(regression_config(), f"{workdir}/fed8", regression_task())
  fed_diff = float(np.max(np.abs(np.asarray(fed_one.params["w"])
                                 - np.asarray(fed_eight.params["w"]))))
  # Parameters, optimizer state and EMA sharded over a "model" axis of 2 (a 4 x 2 mesh),
  # then resumed on a 2 x 4 mesh: the checkpoint is re-laid out on restore.
  sharded_config = tiny_config(**{**OVERRIDES, "train.model_axis_size": 2,
                                  "train.eval_every": 100})
  sharded = experiments.run(sharded_config, f"{workdir}/sharded")   # Evaluates at 100.
  sampled = experiments.run(sharded_config, f"{workdir}/sharded", mode="sample")
  sharded_diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                     for a, b in zip(jax.tree.leaves(single.params),
                                     jax.tree.leaves(sharded.params)))
  kernel = sharded.params["Dense_1"]["kernel"]
  sharded_spec = str(kernel.sharding.spec)
  shard_rows = {tuple(s.data.shape) for s in kernel.addressable_shards}
  longer = tiny_config(**{**OVERRIDES, "train.num_steps": 150, "train.model_axis_size": 4})
  longer_one = tiny_config(**{**OVERRIDES, "train.num_steps": 150})
  resumed = experiments.run(longer, f"{workdir}/sharded")
  straight = experiments.run(longer_one, f"{workdir}/one")
  resumed_diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                     for a, b in zip(jax.tree.leaves(straight.params),
                                     jax.tree.leaves(resumed.params)))
  # An image model (the digits DiT: patches, attention, class labels with dropout) fed by
  # the host image pipeline.
  from configs.images import digits  # pylint: disable=g-import-not-at-top
  image_config = digits.get_config("tiny")
  image_config.train.update(num_steps=10, eval_every=0, checkpoint_every=10)
  image_config.eval.bpd_examples = 0   # Compared on parameters only.
  image_one = experiments.run(image_config, f"{workdir}/img1", devices=jax.devices()[:1])
  image_eight = experiments.run(image_config, f"{workdir}/img8")
  image_diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                   for a, b in zip(jax.tree.leaves(image_one.params),
                                   jax.tree.leaves(image_eight.params)))
  image_scale = max(float(np.max(np.abs(np.asarray(a))))
                    for a in jax.tree.leaves(image_one.params))
  print(json.dumps({"max_abs_diff": max(diffs), "param_scale": scale, "fed_diff": fed_diff,
                    "image_diff": image_diff, "image_scale": image_scale,
                    "sharded_diff": sharded_diff, "sharded_spec": sharded_spec,
                    "shard_shapes": sorted(shard_rows), "resumed_diff": resumed_diff,
                    "sharded_eval_w2": read_metrics(f"{workdir}/sharded")[-1]["w2"],
                    "sharded_samples": int(len(sampled["samples"])),
                    "sharded_devices": len(multi.params["Dense_0"]["kernel"].sharding.device_set),
                    "all_reduce": "all-reduce" in hlo}))


if __name__ == "__main__":
  main(sys.argv[1])
