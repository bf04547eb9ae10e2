"""A Panda with a wrist camera whose *visual* meshes are decimated.

Why: on CPU (llvmpipe) rendering, a camera frame's cost is almost all vertex work on the
Panda's visual triangles (135k for the arm, 425k for the wrist camera's shell), not pixels
(docs/design.md has the measured costs). Decimating the visual meshes to ``faces_fraction`` of their triangles
keeps the arm's silhouette and colours while making frames several times cheaper. Collision
meshes, kinematics, controllers and the MPLib planning model are ManiSkill's own, untouched.

The decimated asset tree is built once per machine under ``~/.cache/roboscape/robots`` (or
``$ROBOSCAPE_CACHE``): a copy of ManiSkill's ``panda_v3.urdf``/``.srdf`` next to decimated
``visual/*.glb`` files and links to the original collision meshes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mani_skill import PACKAGE_ASSET_DIR
from mani_skill.agents.registration import register_agent
from mani_skill.agents.robots.panda.panda_wristcam import PandaWristCam

FULL_DETAIL_UID = "panda_wristcam"
LOWPOLY_PREFIX = "panda_wristcam_lowpoly"
PANDA_DIR = Path(PACKAGE_ASSET_DIR) / "robots" / "panda"


def cache_root() -> Path:
    return Path(os.environ.get("ROBOSCAPE_CACHE", Path.home() / ".cache" / "roboscape"))


def lowpoly_uid(faces_fraction: float) -> str:
    return f"{LOWPOLY_PREFIX}{round(faces_fraction * 100):02d}"


def build_lowpoly_assets(faces_fraction: float) -> Path:
    """The decimated asset directory (built atomically on first use, then reused)."""
    import trimesh

    if not 0.0 < faces_fraction < 1.0:
        raise ValueError(f"faces_fraction must be in (0, 1), got {faces_fraction}")
    target = cache_root() / "robots" / lowpoly_uid(faces_fraction)
    if (target / "panda_v3.urdf").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    for name in ("panda_v3.urdf", "panda_v3.srdf"):
        shutil.copy(PANDA_DIR / name, tmp / name)
    # The wrist camera's D415 shell alone has 425k triangles in many small parts that decimation
    # cannot merge; the camera is a rounded box, so its convex hull (a few hundred) stands in.
    camera_meshes = tmp / "realsense2_description" / "meshes"
    camera_meshes.mkdir(parents=True)
    d415 = trimesh.load(PANDA_DIR / "realsense2_description" / "meshes" / "d415.stl")
    d415.convex_hull.simplify_quadric_decimation(face_count=300).export(camera_meshes / "d415.stl")
    meshes = tmp / "franka_description" / "meshes"
    meshes.mkdir(parents=True)
    (meshes / "collision").symlink_to(PANDA_DIR / "franka_description" / "meshes" / "collision")
    (meshes / "visual").mkdir()
    for glb in sorted((PANDA_DIR / "franka_description" / "meshes" / "visual").glob("*.glb")):
        scene = trimesh.load(glb)
        for name, geom in list(scene.geometry.items()):
            if geom.faces.shape[0] < 1000:
                continue
            material = geom.visual.material
            # Weld the seams first: split vertices would open holes during decimation.
            welded = trimesh.Trimesh(geom.vertices, geom.faces, process=True)
            reduced = welded.simplify_quadric_decimation(percent=1.0 - faces_fraction)
            reduced.fix_normals()
            reduced.visual = trimesh.visual.TextureVisuals(material=material)
            scene.geometry[name] = reduced
        scene.export(meshes / "visual" / glb.name)
    try:
        tmp.rename(target)
    except OSError:  # another process finished first: use its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def robot_uid(faces_fraction: float | None) -> str:
    """The agent uid for a visual detail level (``None`` or 1: ManiSkill's full meshes).

    Registers the low-poly agent on first call."""
    if faces_fraction is None or faces_fraction >= 1.0:
        return FULL_DETAIL_UID
    uid = lowpoly_uid(faces_fraction)
    from mani_skill.agents.registration import REGISTERED_AGENTS

    if uid not in REGISTERED_AGENTS:
        urdf = str(build_lowpoly_assets(faces_fraction) / "panda_v3.urdf")
        register_agent()(
            type(
                f"PandaWristCamLowPoly{round(faces_fraction * 100):02d}",
                (PandaWristCam,),
                {"uid": uid, "urdf_path": urdf},
            )
        )
    return uid


def ensure_registered(uid: str) -> str:
    """Register the low-poly agent ``uid`` names (``panda_wristcam_lowpolyNN``) if it is not yet,
    so that an environment made from recorded env kwargs (ManiSkill's replay tool) finds it."""
    percent = uid.removeprefix(LOWPOLY_PREFIX)
    return robot_uid(int(percent) / 100) if uid.startswith(LOWPOLY_PREFIX) and percent.isdigit() else uid
