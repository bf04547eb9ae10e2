import dataclasses

import pytest

from roboscape.sim.catalogue import (
    CONTAINERS,
    MULTITASK,
    OBJECTS,
    TABLES,
    TASKS,
    Catalogue,
    build_catalogue,
    instruction,
    make_split,
    multitask_scene_ids,
)


def test_catalogue_sizes():
    assert len(OBJECTS) == 20 and len(CONTAINERS) == 2 and len(TABLES) == 2
    cat = build_catalogue(0, list(TASKS), 64, 16)
    for task in TASKS:
        scenes = [s for s in cat.scenes if s.task == task]
        assert len(scenes) == 80
        assert len({s.scene_id for s in scenes}) == 80
        assert sum(s.split == "ood" for s in scenes) == 16  # 20 %


def test_objects_are_distinct_in_shape_size_and_colour():
    names = [o.name for o in OBJECTS]
    assert len(set(names)) == 20
    assert len({o.color for o in OBJECTS}) == 20
    assert len({(o.shape, o.size) for o in OBJECTS}) == 20
    for o in OBJECTS:
        assert o.grasp_width < 0.075, f"{o.name} is too wide for the Panda gripper"
    assert TABLES[0].top_color != TABLES[1].top_color


def test_split_holds_unseen_objects_and_unseen_combinations():
    split = make_split(7)
    cat = build_catalogue(7, list(TASKS), 64, 16)
    ind = [s for s in cat.scenes if s.split == "ind"]
    ood = [s for s in cat.scenes if s.split == "ood"]
    seen_objects = {s.object for s in ind}
    seen_pairs = {(s.object, s.container) for s in ind}
    seen_containers = {s.container for s in ind}
    for s in ood:
        assert (s.object, s.container) not in seen_pairs
        if s.ood_reason == "unseen_object":
            assert s.object not in seen_objects and s.object in split.ood_objects
        else:
            assert s.ood_reason == "unseen_combination"
            # a new combination of parts that are each seen in-domain
            assert s.object in seen_objects and s.container in seen_containers
    assert {s.ood_reason for s in ood} == {"unseen_object", "unseen_combination"}


def test_split_is_deterministic_and_seeded():
    assert make_split(3) == make_split(3)
    assert make_split(3) != make_split(4)
    a = build_catalogue(3, ["push"], 5, 2).to_json()
    b = build_catalogue(3, ["push"], 5, 2).to_json()
    assert a == b


def test_selection_takes_ind_and_ood_scenes_of_each_task():
    cat = build_catalogue(0, ["push", "pull"], 3, 2)
    for task in ("push", "pull"):
        chosen = [cat.scene(s) for s in cat.selected[task]]
        assert [s.split for s in chosen] == ["ind"] * 3 + ["ood"] * 2
        assert all(s.task == task for s in chosen)
    with pytest.raises(ValueError, match="asks for"):
        build_catalogue(0, ["push"], 65, 0)
    with pytest.raises(ValueError, match="unknown tasks"):
        build_catalogue(0, ["juggle"], 1, 0)


def test_instructions_are_built_from_the_scene():
    cat = build_catalogue(0, list(TASKS), 64, 16)
    s = next(s for s in cat.scenes if s.task == "pick_place" and s.object == "lemon" and s.container == "plate")
    assert instruction(s) == "pick up the lemon and place it on the plate"
    s = next(s for s in cat.scenes if s.task == "pick_place" and s.object == "garlic" and s.container == "bowl")
    assert instruction(s) == "pick up the garlic and place it in the bowl"
    s = next(s for s in cat.scenes if s.task == "push" and s.object == "green bell pepper")
    assert instruction(s) == "push the green bell pepper forward by 10 cm"
    s = next(s for s in cat.scenes if s.task == "move_to_aim")
    assert "carpet" in instruction(s) and s.object in instruction(s)


TABLE2 = multitask_scene_ids(["pick_place", "move_to_aim"], ["green bell pepper", "peach"], "plate", "marble")


def test_the_multitask_scenes_are_the_papers_table_2():
    assert TABLE2 == [
        "pick_place/green_bell_pepper-plate-marble",
        "pick_place/peach-plate-marble",
        "move_to_aim/green_bell_pepper-plate-marble",
        "move_to_aim/peach-plate-marble",
    ]
    with pytest.raises(ValueError, match="objects: unknown \\['pepper'\\]"):
        multitask_scene_ids(["pick_place"], ["pepper"], "plate", "marble")


@pytest.mark.parametrize("n_ind", [2, 3, 8, 64])
def test_multitask_scenes_always_get_data_and_leave_the_first_scenes_alone(n_ind):
    plain = build_catalogue(0, list(TASKS), n_ind, 2)
    cat = build_catalogue(0, list(TASKS), n_ind, 2, multitask=TABLE2)
    for task in TASKS:
        forced = [s for s in TABLE2 if s.startswith(f"{task}/")]
        ind = [s for s in cat.selected[task] if cat.scene(s).split == "ind"]
        assert len(ind) == n_ind and len(set(ind)) == n_ind and ind[n_ind - len(forced) :] == forced
        # the seeded order's first scenes (the single-task policies' training scenes) are kept
        kept = [s for s in plain.selected[task] if s not in forced][: n_ind - len(forced)]
        assert ind[: n_ind - len(forced)] == kept
        assert cat.selected[task][n_ind:] == plain.selected[task][n_ind:]  # OOD untouched
    assert cat.selected["push"] == plain.selected["push"]
    assert [s.scene_id for s in cat.policy_scenes(MULTITASK, 1)] == TABLE2
    assert cat.group_tasks(MULTITASK) == ["pick_place", "move_to_aim"] and cat.group_tasks("push") == ["push"]
    assert cat.policy_scenes("push", 1) == cat.training_scenes("push", 1)


def test_multitask_scenes_must_be_in_domain_selected_and_of_a_run_task():
    # split seed 3 holds the green bell pepper out
    assert "green bell pepper" in make_split(3).ood_objects
    with pytest.raises(ValueError, match="out of domain under split seed 3"):
        build_catalogue(3, list(TASKS), 8, 2, multitask=TABLE2)
    with pytest.raises(ValueError, match="n_ind must be at least 2"):
        build_catalogue(0, list(TASKS), 1, 2, multitask=TABLE2)
    with pytest.raises(ValueError, match="'move_to_aim'.*not among the tasks"):
        build_catalogue(0, ["pick_place", "push"], 8, 2, multitask=TABLE2)
    with pytest.raises(KeyError, match="no multi-task scenes"):
        build_catalogue(0, list(TASKS), 8, 2).policy_scenes(MULTITASK, 1)


def test_catalogue_json_round_trip():
    cat = build_catalogue(1, list(TASKS), 2, 1, multitask=TABLE2)
    back = Catalogue.from_json(cat.to_json())
    assert back.scenes == cat.scenes and back.selected == cat.selected and back.split == cat.split
    assert back.multitask == TABLE2
    assert dataclasses.asdict(back.task_params) == dataclasses.asdict(cat.task_params)
