"""Generated meshes: one cache folder per user, shared by every process, each file written whole."""

from __future__ import annotations

import os
import subprocess
import sys

import trimesh


def test_ellipsoid_meshes_are_shared_by_processes_and_leave_one_folder(tmp_path):
    write = "from roboscape.sim.assets import ellipsoid_mesh; print(ellipsoid_mesh((0.03, 0.02, 0.025)))"
    env = {"ROBOSCAPE_MESH_DIR": str(tmp_path), "PATH": ""}
    paths = [
        subprocess.run(
            [sys.executable, "-c", write], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert paths[0] == paths[1]
    (folder,) = tmp_path.iterdir()
    assert folder.name == f"roboscape-meshes-{os.getuid()}"
    assert [p.name for p in folder.iterdir()] == ["ellipsoid_0.0300_0.0200_0.0250.obj"]  # no partial file left
    assert abs(trimesh.load(paths[0]).extents - [0.06, 0.04, 0.05]).max() < 1e-3
