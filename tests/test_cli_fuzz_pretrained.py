"""`--config.model.pretrained=<folder>` on the command line (`experiments.main.cli`, in
process): a tiny random diffusers UNet2DModel saved with its scheduler fine-tunes and
samples through configs/pretrained/ddpm.py:tiny; bad folders (no config.json, an
unsupported block type, a tensor of the wrong shape, an unknown beta schedule, images of
another size) end with exit 2, one line `error: ...` naming the culprit, and no workdir.
Skips only if diffusers/torch are not installed."""
import json
import os
import shutil

import numpy as np
import pytest

import experiments
from configs.pretrained import ddpm
from experiments import main as cli

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

CONFIG = "--config=configs/pretrained/ddpm.py:tiny"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  """A tiny random digits DDPM (8x8, one channel) and its DDPMScheduler."""
  torch.manual_seed(0)
  unet = diffusers.UNet2DModel(
      sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
      layers_per_block=1, norm_num_groups=4, attention_head_dim=8,
      down_block_types=("DownBlock2D", "AttnDownBlock2D"),
      up_block_types=("AttnUpBlock2D", "UpBlock2D"))
  folder = tmp_path_factory.mktemp("tiny_ddpm")
  unet.save_pretrained(folder)
  diffusers.DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder)
  return str(folder)


def _run(argv, capfd):
  code = cli.cli(["main", *argv])
  out, err = capfd.readouterr()
  return code, out + err


def test_the_tiny_config_fine_tunes_and_samples_a_pretrained_model(checkpoint, tmp_path,
                                                                   capfd):
  workdir = str(tmp_path / "run")
  flags = [CONFIG, f"--workdir={workdir}", f"--config.model.pretrained={checkpoint}"]
  code, output = _run(flags, capfd)
  assert code == 0, output
  with open(os.path.join(workdir, "config.json")) as f:
    recorded = json.load(f)
  assert recorded["path"]["scheduler"] == recorded["model"]["pretrained"] == checkpoint
  code, output = _run(flags + ["--mode=sample"], capfd)
  assert code == 0, output
  samples = [f for f in os.listdir(os.path.join(workdir, "samples")) if f.endswith(".npz")]
  with np.load(os.path.join(workdir, "samples", samples[0])) as arrays:
    assert arrays["samples"].shape[1:] == (8, 8, 1)


def _changed_copy(checkpoint, tmp_path, edit):
  folder = tmp_path / "checkpoint"
  shutil.copytree(checkpoint, folder)
  edit(folder)
  return str(folder)


def _no_config(folder):
  os.remove(folder / "config.json")


def _edit_json(name, change):
  def edit(folder):
    with open(folder / name) as f:
      config = json.load(f)
    change(config)
    with open(folder / name, "w") as f:
      json.dump(config, f)
  return edit


def _misshape(folder):
  path = str(folder / "diffusion_pytorch_model.safetensors")
  tensors = safetensors_numpy.load_file(path)
  tensors["conv_out.weight"] = np.zeros((1, 8, 3, 4), np.float32)
  safetensors_numpy.save_file(tensors, path)


BAD = [
    (_no_config, "has no config.json"),
    (_edit_json("config.json", lambda c: c.update(down_block_types=[
        "DownBlock2D", "CrossAttnDownBlock2D"])),
     "down_block_types holds the unsupported block type 'CrossAttnDownBlock2D'"),
    (_misshape, "tensor conv_out.weight has shape (1, 8, 3, 4); the model's config gives "
                "(1, 8, 3, 3)"),
    (_edit_json("scheduler_config.json", lambda c: c.update(beta_schedule="sigmoid")),
     "Unknown beta_schedule 'sigmoid'; valid: linear, scaled_linear, squaredcos_cap_v2"),
    (_edit_json("config.json", lambda c: c.update(sample_size=16)),
     "the checkpoint in"),
]


@pytest.mark.parametrize("edit,text", BAD, ids=["no_config", "block_type", "tensor_shape",
                                                "beta_schedule", "image_size"])
def test_bad_checkpoints_are_refused_before_the_workdir(checkpoint, tmp_path, capfd, edit,
                                                        text):
  folder = _changed_copy(checkpoint, tmp_path, edit)
  workdir = tmp_path / "run"
  code, output = _run([CONFIG, f"--workdir={workdir}",
                       f"--config.model.pretrained={folder}"], capfd)
  lines = [line for line in output.splitlines() if line.strip()]
  assert code == 2, output
  assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], output
  assert "Traceback" not in output
  assert not workdir.exists()


@pytest.fixture(scope="module")
def conditional_checkpoint(checkpoint, tmp_path_factory):
  """The tiny DDPM with a class embedding (10 digits + the null class)."""
  folder = tmp_path_factory.mktemp("tiny_conditional_ddpm")
  shutil.copy(os.path.join(checkpoint, "scheduler_config.json"), folder)
  with open(os.path.join(checkpoint, "config.json")) as f:
    config = json.load(f)
  config.pop("_class_name")
  config = {k: v for k, v in config.items() if not k.startswith("_")}
  torch.manual_seed(0)
  diffusers.UNet2DModel(**dict(config, num_class_embeds=11)).save_pretrained(folder)
  return str(folder)


@pytest.mark.parametrize("variant,conditional,experiment", [
    ("h_space,tiny", False, "h_space"), ("cfgpp,tiny", True, "guided_images"),
    ("digits", False, "images")])
def test_every_variant_builds_its_task_on_a_checkpoint(checkpoint, conditional_checkpoint,
                                                      variant, conditional, experiment):
  """Building a task reads and checks the checkpoint (nothing compiles)."""
  config = ddpm.get_config(variant)
  config.model.pretrained = conditional_checkpoint if conditional else checkpoint
  assert config.experiment == experiment and config.path.scheduler == config.model.pretrained
  task = experiments.EXPERIMENTS.get(config.experiment)(config)
  assert task.init_params is not None
