"""Data: toy 2D samplers and Gaussian-mixture targets with exact densities."""
from diffjax.data.gaussian_mixture import GaussianMixture
from diffjax.data.gaussian_mixture import isotropic_mixture
from diffjax.data.gaussian_mixture import ring_mixture
from diffjax.data.toy2d import TOY_2D
from diffjax.data.toy2d import get_sampler
