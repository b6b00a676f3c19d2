"""The optimiser every family trains with: Adam (Kingma and Ba, arXiv 1412.6980), with
``train.betas`` when the config sets it and the family's own default otherwise (GANs follow
WGAN-GP's ``(0.5, 0.9)``, Gulrajani et al., arXiv 1704.00028; likelihood and diffusion models
Adam's ``(0.9, 0.999)``), so the setting is honoured by every family and the card records the
betas a run actually used (``meta.optimizers``)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

#: Adam's own betas (likelihood, diffusion, distillation).
ADAM_BETAS = (0.9, 0.999)
#: WGAN-GP's betas (adversarial training).
GAN_BETAS = (0.5, 0.9)


def adam(
    params: Iterable[torch.nn.Parameter],
    lr: float,
    betas: tuple[float, float] | None,
    default: tuple[float, float] = ADAM_BETAS,
) -> tuple[torch.optim.Adam, float]:
    """``(Adam, lr)`` as a task's ``optimizers()`` returns them; ``betas`` from
    ``train.betas`` (None: ``default``)."""
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas or default)), lr
