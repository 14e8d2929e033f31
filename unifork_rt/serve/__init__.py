"""Serving on Triton Inference Server: the model repository, the Python-backend models, the server process."""
