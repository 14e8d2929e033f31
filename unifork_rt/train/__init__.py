"""The PyTorch training path (extra `[train]`), in pipeline order:

    tokenizer.py    text BPE (no torch)          imagefolder.py  user data (no torch)
    data.py         batch samplers (no torch)    vq.py           RQ-VAE losses, dead-code restarts
    jobs.py         what each stage computes     loop.py         AdamW, schedule, checkpoints, resume
    state.py        checkpoint files             dist.py         torchrun / DDP
    stages.py       stages 1-3 and the merge     recipe.py       the whole pipeline as one command
    monitor.py      held-out figures (runtime)   cli.py          click commands (no torch at import)
    ablation.py     the UniFork-vs-baselines experiment (`unifork-rt ablation`)

See docs/TRAINING.md.
"""
