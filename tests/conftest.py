"""Test settings: strict rank promotion (silent broadcasting bugs fail loudly), float32."""
import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
