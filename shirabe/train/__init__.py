"""Training infrastructure shared by the model packages."""
