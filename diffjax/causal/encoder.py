"""CausalDiffAE's encoder: an image to its K causal factors, aligned to labelled factors.

Komanduri et al. 2024 (Sec. 3.2) supervise the causal latent with factor labels so that
each coordinate is one named factor of the DAG; here an MLP regresses the standardised
factors (`alignment_loss`), and the diffusion decoder is conditioned on its output.
"""
import flax.linen as nn
import jax.numpy as jnp


class FactorEncoder(nn.Module):
  """images (B, H, W, C) -> factors (B, num_factors)."""
  num_factors: int
  width: int = 256

  @nn.compact
  def __call__(self, images):
    h = images.reshape(images.shape[0], -1)
    h = nn.silu(nn.Dense(self.width)(h))
    h = nn.silu(nn.Dense(self.width)(h))
    return nn.Dense(self.num_factors)(h)


def alignment_loss(predicted, factors):
  """Mean squared error between predicted and labelled (standardised) factors (B, K)."""
  return jnp.mean((predicted - factors) ** 2)
