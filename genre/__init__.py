"""genre: a Hydra-composed experiment sweeper for music genre classification."""
