"""Data generation that does not depend on TFDS: the synthetic clip renderer (`jaxvfi.data.render`)."""
