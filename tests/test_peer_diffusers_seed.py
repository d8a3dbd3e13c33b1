"""A seed method end to end on a checkpoint trained by diffusers itself: a small
class-conditional UNet2DModel (10 digits + the null class, label dropout 0.2) trained for
100 Adam steps on the 8x8 digits in PyTorch with DDPMScheduler's noise, saved with
`save_pretrained`, loaded by `diffjax.runs.from_diffusers` and
  - sampled by diffjax's DDIM: equal to diffusers' DDIMScheduler loop on the same noise
    and labels (1e-3, 20 steps);
  - guided by CFG++ ("CFG++: Manifold-constrained Classifier Free Guidance", Chung et al.):
    lambda = 0.6 raises diffjax's digits classifier's probability of the requested digit
    well above the unguided (lambda = 0, unconditional) samples'.
Skips only if diffusers/torch are not installed."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax import image_metrics, runs
from diffjax.data.digits import digits_bin_centres
from diffjax.paths import diffusers_grid, read_schedule
from diffjax.solvers import sample

diffusers = pytest.importorskip("diffusers")
torch = pytest.importorskip("torch")

NUM = 200
STEPS = 20


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  torch.set_num_threads(1)
  torch.manual_seed(0)
  images, labels = digits_bin_centres("train")
  images = torch.from_numpy(np.asarray(images, np.float32).transpose(0, 3, 1, 2))
  labels = torch.from_numpy(np.asarray(labels)).long()
  unet = diffusers.UNet2DModel(
      sample_size=8, in_channels=1, out_channels=1, block_out_channels=(16, 32),
      layers_per_block=1, norm_num_groups=8, attention_head_dim=16, num_class_embeds=11,
      down_block_types=("DownBlock2D", "AttnDownBlock2D"),
      up_block_types=("AttnUpBlock2D", "UpBlock2D"))
  scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000, clip_sample=False)
  optimizer = torch.optim.Adam(unet.parameters(), lr=2e-3)
  for _ in range(100):
    index = torch.randint(0, len(images), (64,))
    x1, y = images[index], labels[index]
    y = torch.where(torch.rand(64) < 0.2, torch.full_like(y, 10), y)   # the null class
    noise, k = torch.randn_like(x1), torch.randint(0, 1000, (64,))
    prediction = unet(scheduler.add_noise(x1, noise, k), k, class_labels=y).sample
    loss = torch.mean((prediction - noise) ** 2)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
  folder = tmp_path_factory.mktemp("trained_by_diffusers")
  unet.eval().save_pretrained(folder)
  scheduler.save_pretrained(folder)
  return unet, str(folder)


def test_ddim_on_the_trained_checkpoint_equals_diffusers(trained):
  unet, folder = trained
  run = runs.from_diffusers(folder, num_steps=STEPS)
  labels = torch.arange(8) % 10
  scheduler = diffusers.DDIMScheduler.from_pretrained(folder)
  scheduler.set_timesteps(STEPS)
  x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
  x0 = jnp.asarray(x.numpy().transpose(0, 2, 3, 1))
  with torch.no_grad():
    for k in scheduler.timesteps:
      x = scheduler.step(unet(x, k, class_labels=labels).sample, k, x).prev_sample
  grid = jnp.asarray(diffusers_grid(STEPS, read_schedule(folder)))
  fields = run.fields(jnp.asarray(labels.numpy()))
  ours = jax.jit(lambda x0: sample("ddim", fields, run.path, x0, num_steps=STEPS,
                                   grid=grid).x)(x0)
  np.testing.assert_allclose(np.asarray(ours).transpose(0, 3, 1, 2), x.numpy(), atol=1e-3)


def test_cfgpp_on_the_trained_checkpoint_moves_samples_to_the_class(trained):
  _, folder = trained
  run = runs.from_diffusers(folder, num_steps=STEPS)
  labels = jnp.arange(NUM) % 10
  guided = jax.jit(lambda scale: run.sample(jax.random.PRNGKey(0), NUM, labels,
                                            guidance={"method": "cfgpp", "scale": scale}))
  classifier = image_metrics.digits_classifier()

  def p_requested(scale):
    probabilities = jax.nn.softmax(classifier.logits(jnp.clip(guided(scale), -1, 1)), -1)
    return float(jnp.mean(probabilities[jnp.arange(NUM), labels]))

  unguided, cfgpp = p_requested(0.0), p_requested(0.6)
  assert unguided < 0.2 < cfgpp - 0.1, (unguided, cfgpp)
