"""Builds catalogue objects, containers, tables and the target carpet as SAPIEN actors.

Everything is made from primitives or from meshes generated at run time (ellipsoids), so
nothing is downloaded. Generated meshes go to one cache directory per user, shared by every job:
a mesh is a function of its radii alone, and each is written whole under a temporary name, then
renamed, so concurrent jobs never read half a file, and a run leaves one small folder behind, not
one per process.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import sapien
import sapien.physx as physx
import sapien.render

from roboscape.sim.catalogue import ContainerSpec, ObjectSpec, TableSpec, slug

# Rough, grippy surfaces: the fruit should neither skate away from a push nor slip out of
# the fingers. Restitution 0 keeps drops from bouncing.
OBJECT_FRICTION = 1.0
TABLE_TOP_HALF_THICKNESS = 0.02
TABLE_HALF_SIZE = (0.80, 0.65)
TABLE_CENTER_X = -0.12


def _material(color: tuple[float, ...], roughness: float = 0.6) -> sapien.render.RenderMaterial:
    return sapien.render.RenderMaterial(base_color=[*color[:3], 1.0], roughness=roughness)


@cache
def _mesh_dir() -> Path:
    root = Path(os.environ.get("ROBOSCAPE_MESH_DIR", tempfile.gettempdir())) / f"roboscape-meshes-{os.getuid()}"
    root.mkdir(parents=True, exist_ok=True)
    return root


@cache
def ellipsoid_mesh(radii: tuple[float, float, float]) -> str:
    """An ellipsoid surface mesh file (generated at most once per process and radii, reused if a
    job has already written it)."""
    path = _mesh_dir() / ("ellipsoid_" + "_".join(f"{r:.4f}" for r in radii) + ".obj")
    if not path.exists():
        import trimesh

        mesh = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
        mesh.apply_scale(np.asarray(radii, dtype=np.float64))
        partial = path.with_name(f".{path.stem}.{os.getpid()}.obj")
        mesh.export(partial)
        os.replace(partial, path)
    return str(path)


def build_object(scene, spec: ObjectSpec, name: str | None = None):
    """A dynamic rigid body for a catalogue object, resting pose at the local origin."""
    builder = scene.create_actor_builder()
    mat = physx.PhysxMaterial(OBJECT_FRICTION, OBJECT_FRICTION, 0.0)
    render = _material(spec.color)
    s = spec.size
    kw = dict(density=spec.density)
    if spec.shape == "sphere":
        builder.add_sphere_collision(radius=s[0], material=mat, **kw)
        builder.add_sphere_visual(radius=s[0], material=render)
    elif spec.shape == "ellipsoid":
        path = ellipsoid_mesh(tuple(s))
        builder.add_convex_collision_from_file(path, material=mat, **kw)
        builder.add_visual_from_file(path, material=render)
    elif spec.shape == "capsule":
        builder.add_capsule_collision(radius=s[0], half_length=s[1], material=mat, **kw)
        builder.add_capsule_visual(radius=s[0], half_length=s[1], material=render)
    elif spec.shape == "cylinder":
        # SAPIEN cylinders lie along x; stand them up.
        upright = sapien.Pose(q=[np.sqrt(0.5), 0.0, np.sqrt(0.5), 0.0])
        builder.add_cylinder_collision(pose=upright, radius=s[0], half_length=s[1], material=mat, **kw)
        builder.add_cylinder_visual(pose=upright, radius=s[0], half_length=s[1], material=render)
    elif spec.shape == "box":
        builder.add_box_collision(half_size=list(s), material=mat, **kw)
        builder.add_box_visual(half_size=list(s), material=render)
    else:
        raise ValueError(f"unknown shape {spec.shape!r} for object {spec.name!r}")
    builder.initial_pose = sapien.Pose(p=[0, 0, spec.half_height])
    actor = builder.build(name=name or slug(spec.name))
    for body in actor._bodies:
        # Damped rolling: round fruit stops where the gripper leaves it.
        body.angular_damping = 2.0
        body.linear_damping = 0.5
    return actor


def build_container(scene, spec: ContainerSpec, name: str = "container"):
    """A kinematic plate (flat cylinder with a lip) or bowl (a base and four walls)."""
    builder = scene.create_actor_builder()
    render = _material(spec.color, roughness=0.3)
    mat = physx.PhysxMaterial(0.8, 0.8, 0.0)
    if spec.kind == "plate":
        flat = sapien.Pose(p=[0, 0, spec.height / 2], q=[np.sqrt(0.5), 0.0, np.sqrt(0.5), 0.0])
        builder.add_cylinder_collision(pose=flat, radius=spec.radius + 0.01, half_length=spec.height / 2, material=mat)
        builder.add_cylinder_visual(pose=flat, radius=spec.radius + 0.01, half_length=spec.height / 2, material=render)
    elif spec.kind == "bowl":
        t, r, h = 0.006, spec.radius, spec.height
        builder.add_box_collision(pose=sapien.Pose(p=[0, 0, t / 2]), half_size=[r, r, t / 2], material=mat)
        builder.add_box_visual(pose=sapien.Pose(p=[0, 0, t / 2]), half_size=[r, r, t / 2], material=render)
        for sx, sy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            half = [t / 2, r + t, h / 2] if sx else [r + t, t / 2, h / 2]
            pose = sapien.Pose(p=[sx * (r + t / 2), sy * (r + t / 2), h / 2])
            builder.add_box_collision(pose=pose, half_size=half, material=mat)
            builder.add_box_visual(pose=pose, half_size=half, material=render)
    else:
        raise ValueError(f"unknown container kind {spec.kind!r}")
    builder.initial_pose = sapien.Pose(p=[0.0, 0.2, 0.0])
    return builder.build_kinematic(name=name)


def build_table(scene, spec: TableSpec):
    """A table top (its surface at z = 0) with a contrasting edge band, and a floor."""
    builder = scene.create_actor_builder()
    hx, hy = TABLE_HALF_SIZE
    ht = TABLE_TOP_HALF_THICKNESS
    top = sapien.Pose(p=[TABLE_CENTER_X, 0, -ht])
    builder.add_box_collision(pose=top, half_size=[hx, hy, ht], material=physx.PhysxMaterial(0.6, 0.6, 0.0))
    builder.add_box_visual(pose=top, half_size=[hx, hy, ht], material=_material(spec.top_color, 0.8))
    band = 0.03
    for sy in (1, -1):
        pose = sapien.Pose(p=[TABLE_CENTER_X, sy * (hy - band), 0.0005])
        builder.add_box_visual(pose=pose, half_size=[hx, band, 0.0005], material=_material(spec.edge_color))
    pose = sapien.Pose(p=[TABLE_CENTER_X + hx - band, 0, 0.0005])
    builder.add_box_visual(pose=pose, half_size=[band, hy, 0.0005], material=_material(spec.edge_color))
    floor = sapien.Pose(p=[0, 0, -0.76])
    builder.add_box_visual(pose=floor, half_size=[3.0, 3.0, 0.01], material=_material(spec.floor_color, 0.9))
    builder.initial_pose = sapien.Pose()
    return builder.build_static(name="table")


def build_carpet(scene, radius: float, color: tuple[float, float, float]):
    """A flat, visual-only target disc: objects slide over it without touching anything."""
    builder = scene.create_actor_builder()
    flat = sapien.Pose(p=[0, 0, 0.001], q=[np.sqrt(0.5), 0.0, np.sqrt(0.5), 0.0])
    builder.add_cylinder_visual(pose=flat, radius=radius, half_length=0.001, material=_material(color, 0.9))
    builder.initial_pose = sapien.Pose(p=[0.0, -0.2, 0.0])
    return builder.build_kinematic(name="carpet")
