"""The learning-rate schedule (paper 4): constant for `epochs`, then linearly decayed towards zero over
`epochs_decay` more. A pure function of the epoch, so a resumed run recomputes exactly the same rates."""


def lr_factor(epoch: int, epochs: int, epochs_decay: int) -> float:
    """Multiplier of the base lr during 0-based `epoch`, as in the reference implementation's `lambda_rule`:
    1.0 for the first `epochs`, then 1 - k/(epochs_decay+1) for the k-th decay epoch."""
    return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)
