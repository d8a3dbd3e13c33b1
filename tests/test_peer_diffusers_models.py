"""diffusers' UNet2DModel and DiTTransformer2DModel, randomly initialised and saved with
`save_pretrained`, converted by `diffjax.interop` (no torch in the conversion), give the
same outputs as PyTorch on random inputs in float32; exporting and importing round-trips
bit for bit; bad checkpoints fail with one ConfigError line. Skips only if diffusers/torch
are not installed."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.errors import ConfigError
from diffjax.interop import diffusers_config, from_diffusers, to_diffusers
from diffjax.interop.diffusers import read_tensors, state_dict
from diffjax.models import build_model
from diffjax.paths.ddpm import time_of_timestep

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

# google/ddpm-cifar10-32's config at reduced width and 16x16.
CIFAR_UNET = dict(
    sample_size=16, in_channels=3, out_channels=3, block_out_channels=(16, 32, 32, 32),
    layers_per_block=2, norm_num_groups=8, attention_head_dim=None, flip_sin_to_cos=False,
    freq_shift=1, downsample_padding=0, norm_eps=1e-6,
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))
# Class-conditional (10 classes + the null class), 2-head attention, scale-shift norm.
CLASS_UNET = dict(
    sample_size=8, in_channels=1, out_channels=1, block_out_channels=(16, 32),
    layers_per_block=1, norm_num_groups=4, attention_head_dim=16, num_class_embeds=11,
    resnet_time_scale_shift="scale_shift",
    down_block_types=("DownBlock2D", "AttnDownBlock2D"),
    up_block_types=("AttnUpBlock2D", "UpBlock2D"))
DIT = dict(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
           num_layers=2, sample_size=8, patch_size=2, num_embeds_ada_norm=10)


def _perturbed(module):
  """Random weights everywhere (GroupNorm scales and biases included)."""
  torch.manual_seed(0)
  with torch.no_grad():
    for p in module.parameters():
      p.add_(0.1 * torch.randn_like(p))
  return module.eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
  torch.set_num_threads(1)
  root = tmp_path_factory.mktemp("diffusers_models")
  made = {}
  for name, cls, config in (("cifar_unet", diffusers.UNet2DModel, CIFAR_UNET),
                            ("class_unet", diffusers.UNet2DModel, CLASS_UNET),
                            ("dit", diffusers.DiTTransformer2DModel, DIT)):
    torch.manual_seed(1)
    module = _perturbed(cls(**config))
    module.save_pretrained(root / name)
    made[name] = (module, str(root / name))
  return made


def _nhwc(x):
  return jnp.asarray(x.numpy().transpose(0, 2, 3, 1))


@pytest.mark.parametrize("name", ["cifar_unet", "class_unet", "dit"])
def test_converted_model_matches_diffusers(folders, name):
  module, folder = folders[name]
  pretrained = from_diffusers(folder)
  config = module.config
  torch.manual_seed(2)
  x = torch.randn(3, config.in_channels, config.sample_size, config.sample_size)
  timesteps = torch.tensor([0, 517, 999])
  classes = config.get("num_class_embeds") or config.get("num_embeds_ada_norm")
  labels = None if classes is None else torch.tensor([0, 3, classes - 1])
  with torch.no_grad():
    theirs = module(x, timesteps, class_labels=labels).sample.numpy().transpose(0, 2, 3, 1)
  t = jnp.asarray(time_of_timestep(timesteps.numpy(), 1000), jnp.float32)
  apply = jax.jit(lambda p, x, t, c: pretrained.model.apply(p, x, t, c, full_output=True))
  ours = np.asarray(apply(pretrained.params, _nhwc(x), t,
                          None if labels is None else jnp.asarray(labels.numpy())))
  assert ours.shape == theirs.shape
  np.testing.assert_array_less(np.abs(ours - theirs).max(), 1e-4 * np.abs(theirs).max())


def test_export_import_round_trips_bit_for_bit(folders, tmp_path):
  for name in ("class_unet", "dit"):
    module, folder = folders[name]
    pretrained = from_diffusers(folder)
    exported = to_diffusers(tmp_path / name, pretrained.params, pretrained.config)
    original, written = read_tensors(folder), read_tensors(exported)
    assert sorted(original) == sorted(written)
    for key, value in original.items():
      assert written[key].dtype == value.dtype and np.array_equal(written[key], value), key
    again = from_diffusers(exported)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 pretrained.params, again.params)
    loaded = type(module).from_pretrained(exported)   # diffusers reads the export strictly.
    for (key, a), (_, b) in zip(sorted(loaded.state_dict().items()),
                                sorted(module.state_dict().items())):
      assert torch.equal(a, b), key


def test_a_diffjax_model_exports_to_diffusers(tmp_path):
  """A model built (and trainable) in diffjax, written for diffusers, computes the same."""
  options = dict(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                 down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                 up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=8)
  model = build_model("diffusers_unet", (8, 8, 1), **options)
  rng = np.random.default_rng(3)   # Random values (compiling a random init is slow on CPU).
  params = jax.tree.map(lambda p: 0.3 * rng.standard_normal(p.shape).astype(np.float32),
                        jax.eval_shape(model.init, jax.random.PRNGKey(0)))
  folder = to_diffusers(tmp_path / "ours", params,
                        diffusers_config("diffusers_unet", (8, 8, 1), options))
  module = diffusers.UNet2DModel.from_pretrained(folder).eval()
  x = np.random.default_rng(0).standard_normal((2, 8, 8, 1)).astype(np.float32)
  with torch.no_grad():
    theirs = module(torch.from_numpy(x.transpose(0, 3, 1, 2)), torch.tensor([10, 900])
                    ).sample.numpy().transpose(0, 2, 3, 1)
  t = jnp.asarray(time_of_timestep(np.array([10, 900]), 1000), jnp.float32)
  ours = np.asarray(jax.jit(model.apply)(params, jnp.asarray(x), t))
  np.testing.assert_array_less(np.abs(ours - theirs).max(), 1e-4 * np.abs(theirs).max())
  assert set(state_dict(params)) == set(module.state_dict())


def test_remat_bfloat16_and_bottleneck_edits(folders):
  """remat changes nothing; bfloat16 stays close; the identity edit of h changes nothing
  and an edit does; a training gradient is finite for every parameter."""
  _, folder = folders["class_unet"]
  plain = from_diffusers(folder)
  remat = from_diffusers(folder, remat=True)
  bf16 = from_diffusers(folder, dtype="bfloat16")
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 1))
  t, labels = jnp.array([0.3, 0.8]), jnp.array([1, 10])
  run = lambda p, **kw: jax.jit(lambda x: p.model.apply(p.params, x, t, labels, **kw))(x)
  out = run(plain)
  np.testing.assert_allclose(run(remat), out, rtol=1e-5, atol=1e-5)
  assert float(jnp.abs(run(bf16) - out).max()) < 0.05 * float(jnp.abs(out).max())
  out_h, h = run(plain, return_bottleneck=True)
  assert h.shape == (2, 4, 4, 32)
  np.testing.assert_allclose(run(plain, bottleneck_edit=lambda h: h), out, atol=1e-6)
  assert float(jnp.abs(run(plain, bottleneck_edit=lambda h: h + 1.0) - out).max()) > 1e-3

  def loss(params):
    return jnp.mean(remat.model.apply(params, x, t, labels) ** 2)
  grads = jax.jit(jax.grad(loss))(plain.params)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
  assert float(jnp.abs(grads["class_embedding"]["embedding"]).sum()) > 0


def _copy_with(folder, tmp_path, config_change=None, tensors_change=None):
  target = tmp_path / "changed"
  target.mkdir()
  with open(os.path.join(folder, "config.json")) as f:
    config = json.load(f)
  if config_change:
    config_change(config)
  with open(target / "config.json", "w") as f:
    json.dump(config, f)
  tensors = read_tensors(folder)
  if tensors_change:
    tensors_change(tensors)
  safetensors_numpy.save_file(tensors, str(target / "diffusion_pytorch_model.safetensors"))
  return str(target)


def _drop_one(tensors):
  del tensors["conv_out.bias"]


def _add_one(tensors):
  tensors["extra.weight"] = np.zeros(3, np.float32)


def _misshape(tensors):
  tensors["conv_in.weight"] = tensors["conv_in.weight"][:, :, :2]


def _cross_attention(config):
  config["down_block_types"][1] = "CrossAttnDownBlock2D"


@pytest.mark.parametrize("config_change,tensors_change,message", [
    (None, _drop_one, "lacks 1 tensor(s) the model's config needs: conv_out.bias"),
    (None, _add_one, "has 1 tensor(s) the model's config does not use: extra.weight"),
    (None, _misshape, "tensor conv_in.weight has shape (16, 1, 2, 3); the model's config "
                      "gives (16, 1, 3, 3)"),
    (_cross_attention, None, "unsupported block type 'CrossAttnDownBlock2D'"),
])
def test_bad_checkpoints_fail_with_one_line(folders, tmp_path, config_change,
                                            tensors_change, message):
  folder = _copy_with(folders["class_unet"][1], tmp_path, config_change, tensors_change)
  with pytest.raises(ConfigError) as error:
    from_diffusers(folder)
  assert message in str(error.value) and "\n" not in str(error.value)


def test_old_attention_names_are_read(folders, tmp_path):
  """Checkpoints saved before diffusers renamed its attention (query, key, value,
  proj_attn) load as diffusers loads them."""
  renames = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}

  def rename(tensors):
    for key in [k for k in tensors if ".attentions." in k]:
      for new, old in renames.items():
        if f".{new}." in key:
          tensors[key.replace(f".{new}.", f".{old}.")] = tensors.pop(key)
  folder = _copy_with(folders["class_unet"][1], tmp_path, None, rename)
  assert any(".query." in k for k in read_tensors(folder))
  old, new = from_diffusers(folder), from_diffusers(folders["class_unet"][1])
  jax.tree.map(np.testing.assert_array_equal, old.params, new.params)


def test_pretrained_option_of_build_model(folders):
  """build_model(..., pretrained=folder) returns the checkpoint's weights from init (also
  jitted, where they come from the host, not as compiled constants) and refuses another
  architecture, shape or model name."""
  _, folder = folders["class_unet"]
  model = build_model("diffusers_unet", (8, 8, 1), pretrained=folder, num_classes=10)
  reference = from_diffusers(folder).params
  jax.tree.map(np.testing.assert_array_equal, jax.jit(model.init)(jax.random.PRNGKey(5)),
               reference)
  with pytest.raises(ConfigError, match="layers_per_block=2 but the checkpoint"):
    build_model("diffusers_unet", (8, 8, 1), pretrained=folder, layers_per_block=2)
  with pytest.raises(ConfigError, match=r"shape \(8, 8, 3\) but the checkpoint"):
    build_model("diffusers_unet", (8, 8, 3), pretrained=folder)
  with pytest.raises(ConfigError, match="model.name='diffusers_dit' but"):
    build_model("diffusers_dit", (8, 8, 1), pretrained=folder)
  with pytest.raises(ConfigError, match="has no config.json"):
    build_model("diffusers_unet", (8, 8, 1), pretrained=os.path.dirname(folder))
