"""Audio datasets: where clips come from, how they are split, decoded once and batched."""
