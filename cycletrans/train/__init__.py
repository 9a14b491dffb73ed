"""Training (paper sections 3-4, appendix 7.1): unpaired data, losses, the image pool, the loop, checkpoints."""

from cycletrans.train.config import OBJECTIVES, TrainConfig

__all__ = ["OBJECTIVES", "TrainConfig", "train"]


def train(config: TrainConfig, resume: bool = False):
    """Train a CycleGAN as `config` says; returns the finished Trainer (see cycletrans.train.loop)."""
    from cycletrans.train.loop import Trainer

    trainer = Trainer(config, resume=resume)
    trainer.run()
    return trainer
