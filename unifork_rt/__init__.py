"""unifork-rt: compiled edge inference for UniFork-style Y-shaped unified multimodal models.

The runtime (`unifork_rt.runtime`) needs no torch; the model, training and export
(`unifork_rt.model`, `unifork_rt.train`, `unifork_rt.export`) need the `train` extra.
"""

__version__ = "0.1.0"
