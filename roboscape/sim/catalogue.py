"""The scene catalogue: 20 objects, 2 containers, 2 tables and the 4 task families.

Data contract (``scenes.json``, written by the ``scenes`` rule)::

    {
      "version": 1,
      "objects":    {name: ObjectSpec fields},
      "containers": {name: ContainerSpec fields},
      "tables":     {name: TableSpec fields},
      "scenes":     [SceneSpec fields, ...]        # 80 per task, every task
      "split":      {"seed": int, "ood_objects": [...], "ood_pairs": [[object, container], ...]},
      "selected":   {task: [scene_id, ...]}         # the scenes this config generates data for
      "multitask":  [scene_id, ...]                 # Table 2's scenes (all selected, in domain)
    }

A scene is (task, object, container, table). Out-of-domain (OOD) scenes hold unseen objects
and unseen object-container combinations (paper section 8.1); the split is a pure function of
the split seed, so every task shares it.

YCB meshes cannot be downloaded here, so objects are built from primitives or from meshes
generated at run time (``roboscape.sim.assets``); each is distinct in shape, size and colour.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

TASKS: tuple[str, ...] = ("pick_place", "push", "pull", "move_to_aim")

TASK_ENV_IDS: dict[str, str] = {
    "pick_place": "RoboScape-PickPlace-v1",
    "push": "RoboScape-Push-v1",
    "pull": "RoboScape-Pull-v1",
    "move_to_aim": "RoboScape-MoveToAim-v1",
}

MULTITASK = "multitask"
"""The policy group of the paper's multi-task experiment (Table 2): one policy over the scenes of
``Catalogue.multitask``, of several tasks. Every other policy group is one task."""
DOMAINS = ("ind", "ood")  # where policies are evaluated: in domain, out of domain


def group_domains(group: str) -> tuple[str, ...]:
    """The domains a policy group is evaluated in: both for a task's policy, in domain only for the
    multi-task policy (Table 2)."""
    return ("ind",) if group == MULTITASK else DOMAINS


TASK_TITLES: dict[str, str] = {
    "pick_place": "Pick and Place",
    "push": "Push",
    "pull": "Pull",
    "move_to_aim": "Move to Aim",
}


@dataclass(frozen=True)
class ObjectSpec:
    """A graspable object. ``size`` depends on ``shape`` (all in metres):

    - ``sphere``: (radius,)
    - ``ellipsoid``: (rx, ry, rz) semi-axes, a mesh generated at run time
    - ``capsule``: (radius, half_length), lying along its local x axis
    - ``cylinder``: (radius, half_height), standing upright
    - ``box``: (hx, hy, hz) half extents
    """

    name: str
    shape: str
    size: tuple[float, ...]
    color: tuple[float, float, float]
    density: float = 600.0

    @property
    def half_height(self) -> float:
        """Height of the object's centre above the table when it rests."""
        if self.shape == "sphere":
            return self.size[0]
        if self.shape == "ellipsoid":
            return self.size[2]
        if self.shape == "capsule":
            return self.size[0]
        if self.shape == "cylinder":
            return self.size[1]
        if self.shape == "box":
            return self.size[2]
        raise ValueError(f"unknown shape {self.shape!r} for object {self.name!r}")

    @property
    def grasp_width(self) -> float:
        """Width between the fingers for a top-down grasp across the short horizontal axis."""
        if self.shape in ("sphere", "capsule", "cylinder"):
            return 2 * self.size[0]
        return 2 * min(self.size[0], self.size[1])

    @property
    def footprint_radius(self) -> float:
        """Radius of a circle that covers the object's footprint on the table."""
        if self.shape in ("sphere", "cylinder"):
            return self.size[0]
        if self.shape == "capsule":
            return self.size[0] + self.size[1]
        return max(self.size[0], self.size[1])


@dataclass(frozen=True)
class ContainerSpec:
    """A static container. ``radius`` is the inner placing radius; ``height`` its rim height."""

    name: str
    kind: str  # "plate" (flat cylinder) or "bowl" (a base and four thin walls)
    radius: float
    height: float
    color: tuple[float, float, float]


@dataclass(frozen=True)
class TableSpec:
    name: str
    top_color: tuple[float, float, float]
    edge_color: tuple[float, float, float]
    floor_color: tuple[float, float, float]


@dataclass(frozen=True)
class SceneSpec:
    scene_id: str
    task: str
    object: str
    container: str
    table: str
    split: str  # "ind" or "ood"
    ood_reason: str = ""  # "unseen_object" | "unseen_combination" | ""

    @classmethod
    def from_dict(cls, data: dict) -> SceneSpec:
        """From a catalogue or sidecar entry (which may carry extra keys, e.g. the instruction)."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})

    @property
    def env_id(self) -> str:
        return TASK_ENV_IDS[self.task]


@dataclass(frozen=True)
class TaskParams:
    """Task constants that enter instructions and success checks."""

    push_distance: float = 0.10
    pull_distance: float = 0.10
    distance_tolerance: float = 0.03
    carpet_radius: float = 0.06
    carpet_color: tuple[float, float, float] = (0.85, 0.25, 0.55)
    carpet_color_name: str = "pink"

    def __post_init__(self):
        # JSON gives lists back; keep the dataclass hashable and comparable.
        object.__setattr__(self, "carpet_color", tuple(self.carpet_color))


OBJECTS: tuple[ObjectSpec, ...] = (
    ObjectSpec("lemon", "ellipsoid", (0.034, 0.024, 0.024), (0.98, 0.88, 0.12)),
    ObjectSpec("peach", "sphere", (0.030,), (0.98, 0.62, 0.42)),
    ObjectSpec("garlic", "ellipsoid", (0.022, 0.022, 0.019), (0.94, 0.91, 0.83)),
    ObjectSpec("green bell pepper", "ellipsoid", (0.031, 0.031, 0.034), (0.13, 0.58, 0.12)),
    ObjectSpec("red bell pepper", "cylinder", (0.029, 0.036), (0.85, 0.08, 0.06)),
    ObjectSpec("apple", "sphere", (0.033,), (0.62, 0.05, 0.12)),
    ObjectSpec("orange", "sphere", (0.035,), (1.00, 0.50, 0.02)),
    ObjectSpec("plum", "sphere", (0.022,), (0.40, 0.10, 0.42)),
    ObjectSpec("tomato", "ellipsoid", (0.028, 0.028, 0.022), (0.95, 0.27, 0.16)),
    ObjectSpec("potato", "ellipsoid", (0.040, 0.027, 0.022), (0.62, 0.46, 0.27)),
    ObjectSpec("banana", "capsule", (0.018, 0.060), (0.96, 0.86, 0.25)),
    ObjectSpec("carrot", "capsule", (0.015, 0.055), (0.96, 0.45, 0.05)),
    ObjectSpec("cucumber", "capsule", (0.020, 0.058), (0.12, 0.36, 0.12)),
    ObjectSpec("eggplant", "capsule", (0.026, 0.042), (0.30, 0.08, 0.36)),
    ObjectSpec("strawberry", "ellipsoid", (0.018, 0.018, 0.022), (0.88, 0.06, 0.16)),
    ObjectSpec("kiwi", "ellipsoid", (0.030, 0.024, 0.024), (0.48, 0.38, 0.18)),
    ObjectSpec("onion", "ellipsoid", (0.030, 0.030, 0.027), (0.78, 0.56, 0.72)),
    ObjectSpec("soup can", "cylinder", (0.033, 0.050), (0.72, 0.72, 0.78), density=900.0),
    ObjectSpec("sponge", "box", (0.040, 0.026, 0.016), (0.72, 0.90, 0.22), density=150.0),
    ObjectSpec("butter", "box", (0.030, 0.022, 0.020), (0.99, 0.94, 0.62)),
)

CONTAINERS: tuple[ContainerSpec, ...] = (
    ContainerSpec("plate", "plate", 0.085, 0.012, (0.96, 0.96, 0.96)),
    ContainerSpec("bowl", "bowl", 0.065, 0.040, (0.18, 0.40, 0.82)),
)

TABLES: tuple[TableSpec, ...] = (
    TableSpec("wood", (0.56, 0.39, 0.23), (0.36, 0.24, 0.13), (0.30, 0.30, 0.32)),
    TableSpec("marble", (0.74, 0.75, 0.76), (0.55, 0.56, 0.60), (0.45, 0.38, 0.30)),
)

OBJECTS_BY_NAME = {o.name: o for o in OBJECTS}
CONTAINERS_BY_NAME = {c.name: c for c in CONTAINERS}
TABLES_BY_NAME = {t.name: t for t in TABLES}


def slug(name: str) -> str:
    return name.replace(" ", "_")


def instruction(scene: SceneSpec, params: TaskParams = TaskParams()) -> str:
    """The natural-language instruction of a scene, as the text world model sees it."""
    obj = scene.object
    if scene.task == "pick_place":
        prep = "on" if scene.container == "plate" else "in"
        return f"pick up the {obj} and place it {prep} the {scene.container}"
    if scene.task == "push":
        return f"push the {obj} forward by {round(params.push_distance * 100)} cm"
    if scene.task == "pull":
        return f"pull the {obj} back by {round(params.pull_distance * 100)} cm"
    if scene.task == "move_to_aim":
        return f"move the {obj} onto the {params.carpet_color_name} carpet"
    raise ValueError(f"unknown task {scene.task!r}")


@dataclass(frozen=True)
class Split:
    seed: int
    ood_objects: tuple[str, ...]
    ood_pairs: tuple[tuple[str, str], ...]


def make_split(seed: int, n_ood_objects: int = 2, n_ood_pairs: int = 4) -> Split:
    """The deterministic in-domain / out-of-domain split.

    With the defaults, 2 unseen objects (x 2 containers x 2 tables = 8 scenes) and 4 unseen
    object-container pairs of seen objects (x 2 tables = 8 scenes) give 16 of 80 OOD scenes: 20%.
    Every held-out pair's object is seen with the other container and that container with other
    objects, so a held-out pair is a new *combination* of seen parts.
    """
    rng = random.Random(seed)
    names = [o.name for o in OBJECTS]
    rng.shuffle(names)
    ood_objects = tuple(sorted(names[:n_ood_objects]))
    seen = names[n_ood_objects:]
    pair_objects = seen[:n_ood_pairs]
    pairs = tuple(sorted((obj, CONTAINERS[i % len(CONTAINERS)].name) for i, obj in enumerate(pair_objects)))
    return Split(seed=seed, ood_objects=ood_objects, ood_pairs=pairs)


def scene_id(task: str, obj: str, container: str, table: str) -> str:
    return f"{task}/{slug(obj)}-{container}-{table}"


def all_scenes(split: Split) -> list[SceneSpec]:
    """Every scene of every task: 20 objects x 2 containers x 2 tables per task."""
    scenes = []
    for task in TASKS:
        for obj in OBJECTS:
            for cont in CONTAINERS:
                for table in TABLES:
                    if obj.name in split.ood_objects:
                        part, reason = "ood", "unseen_object"
                    elif (obj.name, cont.name) in split.ood_pairs:
                        part, reason = "ood", "unseen_combination"
                    else:
                        part, reason = "ind", ""
                    scenes.append(
                        SceneSpec(
                            scene_id(task, obj.name, cont.name, table.name),
                            task,
                            obj.name,
                            cont.name,
                            table.name,
                            part,
                            reason,
                        )
                    )
    return scenes


def multitask_scene_ids(tasks: Sequence[str], objects: Sequence[str], container: str, table: str) -> list[str]:
    """The scenes of the paper's multi-task experiment (Table 2): every task x object, on one
    container and table."""
    for name, known, values in (
        ("tasks", TASKS, tasks),
        ("objects", OBJECTS_BY_NAME, objects),
        ("container", CONTAINERS_BY_NAME, [container]),
        ("table", TABLES_BY_NAME, [table]),
    ):
        if unknown := [v for v in values if v not in known]:
            raise ValueError(f"scenes.multitask.{name}: unknown {unknown}; known: {list(known)}")
    return [scene_id(task, obj, container, table) for task in tasks for obj in objects]


def select_scenes(
    scenes: list[SceneSpec], tasks: list[str], n_ind: int, n_ood: int, seed: int, always: Sequence[str] = ()
) -> dict[str, list[str]]:
    """The scenes a config generates data for: the first ``n_ind`` in-domain and ``n_ood``
    out-of-domain scenes of each task in a seeded order (the same order for every task).

    The in-domain scenes in ``always`` (Table 2's) are selected whatever the seed: they take the
    last of a task's ``n_ind`` places, so the first scenes -- the single-task policies' training
    scenes -- stay those of the seeded order."""
    by_id = {s.scene_id: s for s in scenes}
    if unknown := [s for s in always if s not in by_id]:
        raise ValueError(f"scenes {unknown} are not in the catalogue")
    if ood := [s for s in always if by_id[s].split != "ind"]:
        raise ValueError(
            f"scenes {ood} are out of domain under split seed {seed} ({by_id[ood[0]].ood_reason}); the multi-task "
            "scenes must be in domain: choose another scenes.split_seed or scenes.multitask"
        )
    selected: dict[str, list[str]] = {}
    for task in tasks:
        ind = sorted(s.scene_id for s in scenes if s.task == task and s.split == "ind")
        ood = sorted(s.scene_id for s in scenes if s.task == task and s.split == "ood")
        if n_ind > len(ind) or n_ood > len(ood):
            raise ValueError(
                f"task {task!r} has {len(ind)} in-domain and {len(ood)} out-of-domain scenes; "
                f"the config asks for {n_ind} and {n_ood}"
            )
        forced = [s for s in always if by_id[s].task == task]
        if len(forced) > n_ind:
            raise ValueError(
                f"task {task!r} has {len(forced)} multi-task scenes (scenes.multitask) but scenes.n_ind is {n_ind}: "
                f"n_ind must be at least {len(forced)}"
            )
        random.Random(f"{seed}:ind").shuffle(ind)
        random.Random(f"{seed}:ood").shuffle(ood)
        seeded = [s for s in ind if s not in forced][: n_ind - len(forced)]
        selected[task] = seeded + forced + ood[:n_ood]
    return selected


@dataclass
class Catalogue:
    split: Split
    scenes: list[SceneSpec]
    selected: dict[str, list[str]] = field(default_factory=dict)
    task_params: TaskParams = field(default_factory=TaskParams)
    multitask: list[str] = field(default_factory=list)

    def scene(self, scene_id_: str) -> SceneSpec:
        for s in self.scenes:
            if s.scene_id == scene_id_:
                return s
        raise KeyError(f"scene {scene_id_!r} is not in the catalogue")

    def training_scenes(self, task: str, n: int) -> list[SceneSpec]:
        """The scenes a policy of ``task`` trains in (the paper's "initial scene"): the first ``n``
        in-domain scenes that have data."""
        if task not in self.selected:
            raise KeyError(f"task {task!r} has no selected scenes; this catalogue selects {sorted(self.selected)}")
        ind = [self.scene(s) for s in self.selected[task] if self.scene(s).split == "ind"]
        if n > len(ind):
            raise ValueError(f"task {task!r} has {len(ind)} in-domain scenes with data; policies cannot train in {n}")
        return ind[:n]

    def group_tasks(self, group: str) -> list[str]:
        """The tasks of a policy group: the task itself, or the multi-task scenes' tasks."""
        if group == MULTITASK:
            return list(dict.fromkeys(self.scene(s).task for s in self.multitask))
        return [group]

    def policy_scenes(self, group: str, n: int) -> list[SceneSpec]:
        """The scenes a policy of ``group`` trains in: a task's first ``n`` training scenes
        (:meth:`training_scenes`), or every multi-task scene (Table 2)."""
        if group != MULTITASK:
            return self.training_scenes(group, n)
        if not self.multitask:
            raise KeyError("this catalogue has no multi-task scenes (scenes.multitask)")
        return [self.scene(s) for s in self.multitask]

    def ood_scenes(self, task: str) -> list[SceneSpec]:
        """Every out-of-domain scene of ``task`` (evaluation needs no data)."""
        if task not in TASKS:
            raise KeyError(f"unknown task {task!r}; known: {list(TASKS)}")
        return [s for s in self.scenes if s.task == task and s.split == "ood"]

    def to_json(self) -> dict:
        return {
            "version": 1,
            "objects": {o.name: dataclasses.asdict(o) for o in OBJECTS},
            "containers": {c.name: dataclasses.asdict(c) for c in CONTAINERS},
            "tables": {t.name: dataclasses.asdict(t) for t in TABLES},
            "task_params": dataclasses.asdict(self.task_params),
            "split": {
                "seed": self.split.seed,
                "ood_objects": list(self.split.ood_objects),
                "ood_pairs": [list(p) for p in self.split.ood_pairs],
            },
            "scenes": [{**dataclasses.asdict(s), "instruction": instruction(s, self.task_params)} for s in self.scenes],
            "selected": self.selected,
            "multitask": self.multitask,
        }

    @classmethod
    def from_json(cls, data: dict) -> Catalogue:
        if data.get("version") != 1:
            raise ValueError(f"unsupported scene catalogue version {data.get('version')!r}")
        sp = data["split"]
        split = Split(sp["seed"], tuple(sp["ood_objects"]), tuple(tuple(p) for p in sp["ood_pairs"]))
        scenes = [SceneSpec.from_dict(s) for s in data["scenes"]]
        return cls(
            split,
            scenes,
            data.get("selected", {}),
            TaskParams(**data.get("task_params", {})),
            data.get("multitask", []),
        )


def build_catalogue(
    split_seed: int,
    tasks: list[str],
    n_ind: int,
    n_ood: int,
    task_params: TaskParams | None = None,
    n_ood_objects: int = 2,
    n_ood_pairs: int = 4,
    multitask: Sequence[str] = (),
) -> Catalogue:
    """The catalogue of ``split_seed``'s split, with the scenes of ``tasks`` that get data; the
    multi-task scenes ``multitask`` (:func:`multitask_scene_ids`) are among them."""
    unknown = set(tasks) - set(TASKS)
    if unknown:
        raise ValueError(f"unknown tasks {sorted(unknown)}; known: {list(TASKS)}")
    if missing := sorted({s.split("/")[0] for s in multitask} - set(tasks)):
        raise ValueError(f"the multi-task scenes' tasks {missing} are not among the tasks {list(tasks)}")
    split = make_split(split_seed, n_ood_objects, n_ood_pairs)
    scenes = all_scenes(split)
    selected = select_scenes(scenes, tasks, n_ind, n_ood, split_seed, multitask)
    return Catalogue(split, scenes, selected, task_params or TaskParams(), list(multitask))
