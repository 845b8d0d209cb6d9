"""The engine: the pipeline (prepare/calibrate/convert), composition, explain and diff.

It sits above the adapter and below the API; everything here imports torch.
"""
