"""Consistency-distillation configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.config import ModelConfig


class ConsistencyConfig(ModelConfig):
    """Consistency distillation of a trained CaloClouds teacher (arXiv 2303.01469, as in
    CaloClouds II): ``teacher`` is the teacher's checkpoint; the student starts from its EMA
    weights. ``n_discretisation`` Karras levels, target EMA ``target_ema``; sampling with
    ``sampler`` in ``steps`` steps (1: one-step)."""

    name: Literal["consistency"] = "consistency"
    teacher: str
    n_discretisation: int = Field(18, ge=2)
    target_ema: float = Field(0.95, ge=0.0, lt=1.0)
    sampler: Literal["consistency", "multistep"] = "consistency"
    steps: int = Field(1, ge=1)
