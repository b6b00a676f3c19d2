"""CaloClouds II's shower flow and post-processing (Buhmann et al., arXiv 2309.05704), shared
by the point families that generate a shower's points given its shower-level features
(CaloClouds, its consistency-distilled sampler, EPiC-GAN with ``shower_flow``).

- :mod:`.features`: the per-shower features (points, visible energy, centre of gravity,
  per-layer point and energy fractions and widths), their conditional flow, and drawing them;
- :mod:`.calibrate`: the numpy post-processing that calibrates generated points to them;
- :mod:`.postprocess`: the same in torch, on the model's device and in TorchScript exports;
- :mod:`.onnx_glue` and :mod:`.glue_validity`: numpy glue of an ONNX export (copied into it);
- :mod:`.hits`: the hit-cell count of older checkpoints' features.

Not a family: nothing here is in the registry.
"""
