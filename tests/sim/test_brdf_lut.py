"""The stand-in BRDF table: the same frames as SAPIEN's computed table, in the real renderer, and
SAPIEN's table kept wherever an environment map would make it count."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import sapien

import roboscape.sim.tasks
from roboscape.sim.brdf_lut import skip_default_brdf_lut
from roboscape.sim.catalogue import build_catalogue
from roboscape.sim.env import make_env


def frames(scene, shader: str) -> list[np.ndarray]:
    """The policy camera's frames over a few steps and the 512-pixel render camera's last frame."""
    env = make_env(scene, image_size=64, shader=shader, render_mode="rgb_array")
    try:
        out = [env.reset(seed=3)[0]["sensor_data"]["third_view"]["rgb"].numpy()]
        for action in np.linspace(-1, 1, 4 * 7).reshape(4, 7):
            out.append(env.step(action)[0]["sensor_data"]["third_view"]["rgb"].numpy())
        return [*out, np.asarray(env.render())]
    finally:
        env.close()


@pytest.fixture(scope="module")
def renderer():
    """One SAPIEN render system held over the module, so that SAPIEN computes its table once for
    both shader packs' baselines (it lives as long as the renderer does)."""
    return sapien.render.RenderSystem(sapien.Device("cpu"))


@pytest.mark.slow
@pytest.mark.parametrize("shader", ["minimal", "default"])
def test_the_stand_in_renders_the_same_frames_as_sapiens_table(shader, monkeypatch, renderer):
    scene = build_catalogue(0, ["move_to_aim"], 1, 1).scenes[0]
    given = []
    monkeypatch.setattr(roboscape.sim.tasks, "skip_default_brdf_lut", lambda scenes: given.append(0) or 0)
    with_sapiens = frames(scene, shader)  # SAPIEN computes its table for these cameras
    monkeypatch.setattr(roboscape.sim.tasks, "skip_default_brdf_lut", lambda s: given.append(skip_default_brdf_lut(s)))
    with_stand_in = frames(scene, shader)
    assert given == [0, 3]  # the wrist camera, the policy's camera and the render camera
    assert len(with_sapiens) == len(with_stand_in) == 6
    for a, b in zip(with_sapiens, with_stand_in, strict=True):
        np.testing.assert_array_equal(a, b)
    assert with_sapiens[0].std() > 0  # a rendered scene, not a blank frame


def test_a_scene_with_an_environment_map_keeps_sapiens_table():
    camera = sapien.render.RenderCameraComponent(8, 8)  # not in a scene: set_texture would raise
    lit = SimpleNamespace(render_system=SimpleNamespace(cubemap=object()), entities=[])
    plain = SimpleNamespace(
        render_system=SimpleNamespace(cubemap=None),
        entities=[SimpleNamespace(components=[camera])],
    )
    assert skip_default_brdf_lut([plain, lit]) == 0
