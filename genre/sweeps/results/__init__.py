"""A sweep's answer from its run folders alone: the jobs read back, configurations compared, the summary
files, the heatmap and the Pareto front."""
