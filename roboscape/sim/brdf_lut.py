"""A stand-in for SAPIEN's BRDF lookup table, in scenes without an environment map.

SAPIEN's rasterising shader packs (ManiSkill's ``minimal`` and ``default``) sample a split-sum BRDF
lookup table for their image-based lighting. A camera that was given none gets SAPIEN's default
table, which SAPIEN computes with a compute shader on the render device the first time a process
renders. On llvmpipe (this project's CPU rendering) that is seconds of CPU time in every process
that renders: every job that builds a ManiSkill scene, and every worker process of a vectorised one.

The table only weights the environment map's light, and a scene without an environment map
samples SAPIEN's default cube map, which is black. In such a scene every finite table gives the
same frames, bit for bit (tests/sim/test_brdf_lut.py), so a 1x1 table of zeros replaces it there.
A scene with an environment map keeps SAPIEN's table.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import sapien

TEXTURE_NAME = "BRDFLUT"
"""The name under which SAPIEN's renderer takes a camera's own texture for the shaders'
``samplerBRDFLUT``; a camera without one gets SAPIEN's computed default."""


def stand_in_table() -> sapien.render.RenderTexture:
    """A 1x1 two-channel table of zeros, the shape (two channels) of SAPIEN's own."""
    return sapien.render.RenderTexture(np.zeros((1, 1, 2), np.float32), 2, "R32G32Sfloat")


def skip_default_brdf_lut(sub_scenes: Iterable[sapien.Scene]) -> int:
    """Give every camera of ``sub_scenes`` the stand-in table, unless a sub-scene has an
    environment map (then nothing changes). Call it after the cameras were added and before the
    first render. Returns the number of cameras given the stand-in."""
    sub_scenes = list(sub_scenes)
    if any(scene.render_system.cubemap is not None for scene in sub_scenes):
        return 0
    cameras = [
        component
        for scene in sub_scenes
        for entity in scene.entities
        for component in entity.components
        if isinstance(component, sapien.render.RenderCameraComponent)
    ]
    for camera in cameras:
        camera.set_texture(TEXTURE_NAME, stand_in_table())
    return len(cameras)
