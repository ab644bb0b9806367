"""Reusable Flax layers shared by the jaxvfi models."""
