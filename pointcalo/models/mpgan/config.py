"""MPGAN configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.models.gan import GANConfig

#: The most neighbours per point: every edge is a message of ``hidden`` floats per layer, so
#: the graph's memory grows with k times the points (at 1e5 a batch needed over 7.8 GB).
MAX_K = 128


class MPGANConfig(GANConfig):
    """MPGAN sizes (Kansal et al., arXiv 2106.11535) and its graphs.

    ``graph: full`` connects every pair of points of a cloud (the paper's choice, for jets of
    tens of particles); ``graph: knn`` connects each point to its ``k`` nearest points of the
    same cloud (at most :data:`MAX_K`), for showers of thousands of points: in the critic's
    input points and the generator's first node features, built once per pass (``dynamic:
    true`` rebuilds it in every layer's input features, as DGCNN, arXiv 1801.07829, at 3x the
    graph cost). Noise sizes and the point-count flow as every GAN family
    (:class:`pointcalo.models.gan.GANConfig`).
    """

    name: Literal["mpgan"] = "mpgan"
    node_dim: int = Field(32, ge=1)
    global_dim: int = Field(16, ge=1)
    hidden: int = Field(32, ge=1)
    layers: int = Field(3, ge=1)
    critic_layers: int = Field(3, ge=1)
    graph: Literal["knn", "full"] = "knn"
    k: int = Field(8, ge=1, le=MAX_K)
    dynamic: bool = False
