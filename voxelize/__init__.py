"""voxelize: project calorimeter point clouds onto detector grids and back.

Depends on numpy (torch optional) and never imports pointcalo.
"""
