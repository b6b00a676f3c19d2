"""The number of points of a cloud: a learned ``p(log n | log c)``."""

from __future__ import annotations

import torch
from torch import nn


class PointCount(nn.Module):
    """Learned ``p(log n | log c)`` in standardised units: a conditional spline flow (zuko)."""

    def __init__(self, transforms: int = 2, hidden: int = 32) -> None:
        super().__init__()
        import zuko

        self.flow = zuko.flows.NSF(
            features=1, context=1, transforms=transforms, hidden_features=(hidden, hidden)
        )

    def nll(self, cond: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of ``cond[:, 1]`` given ``cond[:, 0]``."""
        return -self.flow(cond[:, :1]).log_prob(cond[:, 1:2]).mean()

    @torch.no_grad()
    def sample(self, log_c: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Standardised log n for standardised ``log_c [B]``, from base noise ``[B]``."""
        dist = self.flow(log_c[:, None])
        return dist.transform.inv(base[:, None]).squeeze(1)
