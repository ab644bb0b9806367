"""Model families. Each family module exposes `build(model_config) -> nn.Module` and `LOSS_TERMS`."""
