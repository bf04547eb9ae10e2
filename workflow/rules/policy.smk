# Policies in the simulator: SFT, RL w. ManiSkill, and the closed-loop evaluation every table cell uses.
POLICY = config["policy"]
EVAL = config["evaluation"]
RLWM = config["rl"]["world_model"]
REWARD_MODELS = config["rl"]["reward_models"]


def rlwm_method(reward):
    """The method (policy directory, table row) of RL w. World Model with the reward ``reward``."""
    return "rl_world_model" if reward == "general" else f"rl_world_model_{reward}"


RLWM_METHODS = {rlwm_method(r): r for r in RLWM["rewards"]}
if unknown := set(RLWM["learned_reward_tasks"]) - set(TASKS):
    raise ValueError(f"config fails validation: rl.world_model.learned_reward_tasks: {sorted(unknown)} are not among "
                     f"scenes.tasks {TASKS}")
LEARNED_REWARD_TASKS = [t for t in TASKS if t in RLWM["learned_reward_tasks"]]
# RL w. World Model's environment (roboscape.rl.world_model_env.WMEnvConfig)
RLWM_ENV = {"num_envs": RLWM["num_envs"], "episode_steps": POLICY["episode_steps"], "done_threshold": RLWM["done_threshold"],
            "terminate_on_done": RLWM["terminate_on_done"], "done_steps": RLWM["done_steps"], "decoder": RLWM["decoder"],
            **ROLLOUT}


def method_tasks(method):
    """The tasks whose single-task policies a method trains and evaluates: every task, or for a
    learned-reward baseline, rl.world_model.learned_reward_tasks."""
    return LEARNED_REWARD_TASKS if RLWM_METHODS.get(method, "general") != "general" else TASKS


METHODS = ["sft", "rl_maniskill", *RLWM_METHODS]  # the policies evaluated (a table's rows)
EVAL_SHARDS = [f"{i:03d}" for i in range(EVAL["shards"])]
RL_RUNS = list(range(config["rl"]["runs"]))


def method_runs(method):
    """A method's training runs per policy: SFT's one (every RL run starts from it), or rl.runs PPO runs."""
    return [0] if method == "sft" else RL_RUNS


def policy_dir(method, group, run):
    """Where a trained policy lies: SFT's one per group, or an RL method's per group and run."""
    if method == "sft":
        if int(run) != 0:
            raise ValueError(f"SFT trains one policy per group: it has no run {run}")
        return f"{OUT}/policy/sft/{group}"
    return f"{OUT}/policy/{method}/{group}/run{run}"


def ppo_args(ppo):
    """A PPO run's arguments: ``ppo`` (a config section) with the run's seed, ppo.seed + run."""
    return lambda wc: {**ppo, "seed": ppo["seed"] + int(wc.run)}


def cell_episodes(group, domain):
    """Episodes of an evaluation cell: a task's in or out of domain, or every multi-task scene's."""
    if group == MULTITASK:
        if domain != "ind":
            raise ValueError("the multi-task policy is evaluated in domain only (Table 2)")
        return EVAL["episodes"]["multitask"] * len(MULTITASK_SCENES)
    return EVAL["episodes"][domain]


def group_trajectories(group, ext):
    """The trajectory shards of a policy group's tasks."""
    return expand(f"{OUT}/trajectories/{{task}}/shard_{{shard}}.{ext}", task=group_tasks(group), shard=SHARDS)


def policy_spec():
    """The configured policy: its kind and that kind's section (an edit to the other kind's reruns nothing)."""
    return {"kind": POLICY["kind"], **(POLICY["arch"] if POLICY["kind"] == "mlp" else POLICY["openvla"])}


def sim_env():
    """What a policy environment needs of the config: the recording's camera and rates, the policy's rate."""
    return {"frame_skip": WM["arch"]["frame_skip"], "episode_steps": POLICY["episode_steps"],
            "image_size": GENERATOR["image_size"], "control_freq": GENERATOR["control_freq"], "sim_freq": GENERATOR["sim_freq"],
            "robot_visual_detail": GENERATOR["robot_visual_detail"], "shader": GENERATOR["shader"]}


rule policy_instructions:
    """The sentence embedding of every scene's instruction (the policies' instruction input)."""
    input:
        lib=library("policy_instructions.py"),
        scenes=f"{OUT}/scenes/scenes.json",
    output:
        f"{OUT}/policy/instructions.safetensors",
    params:
        backend=WM["text_encoder"],
        tasks=TASKS,
    log:
        f"{OUT}/logs/policy_instructions.log",
    benchmark:
        f"{OUT}/benchmarks/policy_instructions.tsv"
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/policy_instructions.py"


rule replay_policy_rate:
    """Can the policy's action space solve the tasks? Each optimal trajectory's actions grouped per
    policy step, split back evenly and replayed open loop."""
    input:
        lib=library("replay.py"),
        h5=trajectory_shards("h5"),
        json=trajectory_shards("json"),
    output:
        f"{OUT}/trajectories/replay_fidelity_policy_rate.json",
    params:
        max_episodes_per_shard=config["replay"]["max_episodes_per_shard"],
        frame_skip=WM["arch"]["frame_skip"],
    log:
        f"{OUT}/logs/replay_policy_rate.log",
    benchmark:
        f"{OUT}/benchmarks/replay_policy_rate.tsv"
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/replay.py"


rule sft:
    """Supervised fine-tuning: behaviour cloning of the planner in a policy group's training scenes
    (a task's, or Table 2's multi-task scenes)."""
    input:
        lib=library("sft.py"),
        scenes=f"{OUT}/scenes/scenes.json",
        instructions=f"{OUT}/policy/instructions.safetensors",
        h5=lambda wc: group_trajectories(wc.group, "h5"),
        json=lambda wc: group_trajectories(wc.group, "json"),
    output:
        weights=f"{OUT}/policy/sft/{{group}}/model/model.safetensors",
        summary=f"{OUT}/policy/sft/{{group}}/train.json",
    params:
        policy=policy_spec(),
        train_scenes=POLICY["train_scenes"],
        labels=POLICY["sft"]["trajectory_labels"],
        augment_shift=POLICY["sft"]["augment_shift"],
        frame_skip=WM["arch"]["frame_skip"],
        train=POLICY["sft"]["train"],
    log:
        f"{OUT}/logs/sft/{{group}}.log",
    benchmark:
        f"{OUT}/benchmarks/sft/{{group}}.tsv"
    threads: POLICY["sft"]["resources"]["cpus"]
    resources:
        mem_mb=POLICY["sft"]["resources"]["mem_mb"],
        runtime=POLICY["sft"]["resources"]["runtime"],
        gpu=POLICY["sft"]["resources"]["gpus"],
    wildcard_constraints:
        group="|".join(GROUPS),
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/sft.py"


rule rl_maniskill:
    """RL w. ManiSkill: one PPO run from the SFT policy in its training scenes, with each task's rule-based reward."""
    input:
        lib=library("rl_maniskill.py"),
        scenes=f"{OUT}/scenes/scenes.json",
        instructions=f"{OUT}/policy/instructions.safetensors",
        init=f"{OUT}/policy/sft/{{group}}/model/model.safetensors",
    output:
        weights=f"{OUT}/policy/rl_maniskill/{{group}}/run{{run}}/model/model.safetensors",
        summary=f"{OUT}/policy/rl_maniskill/{{group}}/run{{run}}/train.json",
        snapshots=directory(f"{OUT}/policy/rl_maniskill/{{group}}/run{{run}}/snapshots"),
    params:
        train_scenes=POLICY["train_scenes"],
        env={**sim_env(), "num_envs": config["rl"]["maniskill"]["num_envs"],
             "terminate_on_success": config["rl"]["maniskill"]["terminate_on_success"]},
        ppo=ppo_args(config["rl"]["maniskill"]["ppo"]),
    log:
        f"{OUT}/logs/rl_maniskill/{{group}}_run{{run}}.log",
    benchmark:
        f"{OUT}/benchmarks/rl_maniskill/{{group}}_run{{run}}.tsv"
    threads: config["rl"]["maniskill"]["resources"]["cpus"]
    resources:
        mem_mb=config["rl"]["maniskill"]["resources"]["mem_mb"],
        runtime=config["rl"]["maniskill"]["resources"]["runtime"],
        gpu=config["rl"]["maniskill"]["resources"]["gpus"],
    wildcard_constraints:
        group="|".join(GROUPS),
        run=r"\d+",
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/rl_maniskill.py"


rule imagine_goals:
    """The text world model's goal for every recorded initial state of the task's scenes (Eq. 6),
    and how close it comes to the planner's final frame."""
    input:
        lib=library("imagine_goals.py"),
        scenes=f"{OUT}/scenes/scenes.json",
        text_wm=f"{OUT}/world_model/text/model/model.safetensors",
        tokenizer=f"{OUT}/tokenizer/finetuned/model/model.safetensors",
        instructions=f"{OUT}/world_model/instructions.safetensors",
        h5=lambda wc: expand(f"{OUT}/trajectories/{wc.task}/shard_{{shard}}.h5", shard=SHARDS),
        json=lambda wc: expand(f"{OUT}/trajectories/{wc.task}/shard_{{shard}}.json", shard=SHARDS),
    output:
        goals=f"{OUT}/rl/goals/{{task}}.h5",
        fidelity=f"{OUT}/rl/goals/{{task}}.json",
        sheet=report(f"{OUT}/rl/goals/{{task}}.png", caption=caption("goals"), category="4. Policies",
                     subcategory="imagined goals", labels={"task": "{task}", "figure": "imagined goals"}),
    params:
        goals=RLWM["goals"],
        view=TOKENIZER["run"]["view"],
        perceptual_backend=TOKENIZER["run"]["perceptual_backend"],
    log:
        f"{OUT}/logs/imagine_goals/{{task}}.log",
    benchmark:
        f"{OUT}/benchmarks/imagine_goals/{{task}}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    wildcard_constraints:
        task="|".join(TASKS),
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/imagine_goals.py"


def reward_training_inputs(wc):
    if wc.kind == "embedding":
        return {"lib": library("train_reward.py"), "index": f"{OUT}/tokens/index.csv", "shards": shard_files("tokens"),
                "world_model": f"{OUT}/world_model/action/model/model.safetensors"}
    return {"lib": library("train_reward.py"), "index": f"{OUT}/clips/index.csv", "shards": shard_files("clips")}


rule train_reward:
    """A learned-reward baseline for one task: the embedding head on the frozen action world
    model's hidden states (iVideoGPT), or the proxy CNN on frames (DiWA)."""
    input:
        unpack(reward_training_inputs),
    output:
        weights=f"{OUT}/rl/rewards/{{kind}}/{{task}}/model/model.safetensors",
        metrics=f"{OUT}/rl/rewards/{{kind}}/{{task}}/metrics.json",
    params:
        arch={"hidden_dim": REWARD_MODELS["hidden_dim"], "channels": REWARD_MODELS["channels"]},
        data={**WM["data"], "trajectory_labels": WM["action"]["trajectory_labels"], "view": TOKENIZER["run"]["view"]},
        train=REWARD_MODELS["train"],
        eval_items=REWARD_MODELS["eval_items"],
        cache_features=REWARD_MODELS["cache_features"],
    log:
        f"{OUT}/logs/train_reward/{{kind}}_{{task}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_reward/{{kind}}_{{task}}.tsv"
    threads: REWARD_MODELS["resources"]["cpus"]
    resources:
        mem_mb=REWARD_MODELS["resources"]["mem_mb"],
        runtime=REWARD_MODELS["resources"]["runtime"],
        gpu=REWARD_MODELS["resources"]["gpus"],
    wildcard_constraints:
        kind="embedding|proxy",
        task="|".join(LEARNED_REWARD_TASKS),
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/train_reward.py"


def validity_inputs(wc):
    inputs = {"lib": library("reward_validity.py"), "token_index": f"{OUT}/tokens/index.csv",
              "h5": expand(f"{OUT}/trajectories/{wc.task}/shard_{{shard}}.h5", shard=SHARDS),
              "json": expand(f"{OUT}/trajectories/{wc.task}/shard_{{shard}}.json", shard=SHARDS),
              "world_model": f"{OUT}/world_model/action/model/model.safetensors",
              "tokenizer": f"{OUT}/tokenizer/finetuned/model/model.safetensors", "goals": f"{OUT}/rl/goals/{wc.task}.h5",
              # the held-arm episodes in ManiSkill
              "scenes": f"{OUT}/scenes/scenes.json", "instructions": f"{OUT}/policy/instructions.safetensors"}
    for kind in validity_rewards(wc.task):
        if kind != "general":
            inputs[kind] = f"{OUT}/rl/rewards/{kind}/{wc.task}/model/model.safetensors"
    return inputs


def validity_rewards(task):
    """The rewards scored along a task's trajectories: the general one, and the learned ones where they are trained."""
    return [r for r in RLWM["rewards"] if r == "general" or task in LEARNED_REWARD_TASKS]


rule reward_validity:
    """Figure 3 as numbers: each reward along the task's held-out and out-of-domain planner
    trajectories -- does it rise as the task progresses, does it agree with the simulator's? --
    and whether the sparse term pays when the arm is held where it is."""
    input:
        unpack(validity_inputs),
    output:
        validity=f"{OUT}/rl/rewards/validity/{{task}}.json",
        frames=f"{OUT}/rl/rewards/validity/{{task}}.csv",
        figure=report(f"{OUT}/rl/rewards/validity/{{task}}.png", caption=caption("reward_validity"), category="4. Policies",
                      subcategory="reward validity", labels={"task": "{task}", "figure": "rewards along a trajectory"}),
    params:
        rewards=lambda wc: validity_rewards(wc.task),
        env=RLWM_ENV,  # the held-arm episodes run as RL w. World Model's environment runs them
        sim=sim_env(),  # and as the policies' ManiSkill environment runs them
        reward={**RLWM["reward"], "perceptual_backend": TOKENIZER["run"]["perceptual_backend"]},
        heldout_every=WM["data"]["heldout_every"],
        frame_skip=WM["arch"]["frame_skip"],
        view=TOKENIZER["run"]["view"],
        # the jittering arm's std, a share of the recorded actions': the MLP policy's initial exploration noise
        jitter=math.exp(POLICY["arch"]["log_std_init"]),
    log:
        f"{OUT}/logs/reward_validity/{{task}}.log",
    benchmark:
        f"{OUT}/benchmarks/reward_validity/{{task}}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    wildcard_constraints:
        task="|".join(TASKS),
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/reward_validity.py"


def rlwm_inputs(wc):
    inputs = {"lib": library("rl_world_model.py"), "scenes": f"{OUT}/scenes/scenes.json",
              "instructions": f"{OUT}/policy/instructions.safetensors",
              "init": f"{OUT}/policy/sft/{wc.group}/model/model.safetensors",
              "world_model": f"{OUT}/world_model/action/model/model.safetensors",
              "tokenizer": f"{OUT}/tokenizer/finetuned/model/model.safetensors",
              "goals": [f"{OUT}/rl/goals/{t}.h5" for t in group_tasks(wc.group)]}
    if (reward := RLWM_METHODS[wc.method]) != "general":
        if wc.group not in LEARNED_REWARD_TASKS:
            raise ValueError(f"{wc.method}: a learned reward is trained for rl.world_model.learned_reward_tasks "
                             f"{LEARNED_REWARD_TASKS} only (the multi-task policy learns with the general reward)")
        inputs["reward_model"] = f"{OUT}/rl/rewards/{reward}/{wc.group}/model/model.safetensors"
    return inputs


rule rl_world_model:
    """RL w. World Model: one PPO run from the SFT policy in the action world model, with the
    general reward (the paper's method) or a learned-reward baseline."""
    input:
        unpack(rlwm_inputs),
    output:
        weights=f"{OUT}/policy/{{method}}/{{group}}/run{{run}}/model/model.safetensors",
        summary=f"{OUT}/policy/{{method}}/{{group}}/run{{run}}/train.json",
        snapshots=directory(f"{OUT}/policy/{{method}}/{{group}}/run{{run}}/snapshots"),
    params:
        train_scenes=POLICY["train_scenes"],
        reset_scenes=RLWM["reset_scenes"],
        env=RLWM_ENV,
        # a learned reward reads none of the general reward's settings: editing them reruns only its policies
        reward=lambda wc: {"kind": "general", **RLWM["reward"], "perceptual_backend": TOKENIZER["run"]["perceptual_backend"]}
        if RLWM_METHODS[wc.method] == "general" else {"kind": RLWM_METHODS[wc.method]},
        ppo=ppo_args(RLWM["ppo"]),
        device="cuda" if RLWM["resources"]["gpus"] else "cpu",  # the world model, its reward and the policy
    log:
        f"{OUT}/logs/{{method}}/{{group}}_run{{run}}.log",
    benchmark:
        f"{OUT}/benchmarks/rl_world_model/{{method}}_{{group}}_run{{run}}.tsv"
    threads: RLWM["resources"]["cpus"]
    resources:
        mem_mb=RLWM["resources"]["mem_mb"],
        runtime=RLWM["resources"]["runtime"],
        gpu=RLWM["resources"]["gpus"],
    wildcard_constraints:
        method="|".join(RLWM_METHODS),
        group="|".join(GROUPS),
        run=r"\d+",
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/rl_world_model.py"


rule eval_policy:
    """One shard of a policy's evaluation (one training run's): closed loop in ManiSkill, in and
    out of domain (the multi-task policy: in domain, in each of its scenes), every table cell of
    the policy at once. Every run of a method is evaluated on the same episodes."""
    input:
        lib=library("eval_policy.py"),
        scenes=f"{OUT}/scenes/scenes.json",
        instructions=f"{OUT}/policy/instructions.safetensors",
        policy=lambda wc: f"{policy_dir(wc.method, wc.group, wc.run)}/model/model.safetensors",
    output:
        episodes=f"{OUT}/policy/eval/{{method}}/{{group}}/run{{run}}/shard_{{shard}}.csv",
        gif=report(f"{OUT}/policy/eval/{{method}}/{{group}}/run{{run}}/shard_{{shard}}.gif", caption=caption("policy_rollouts"),
                   category="4. Policies", subcategory="{method}", labels={"method": "{method}", "policy": "{group}",
                                                                           "run": "{run}", "shard": "{shard}"}),
        frames=f"{OUT}/policy/eval/{{method}}/{{group}}/run{{run}}/shard_{{shard}}.npz",
    params:
        train_scenes=POLICY["train_scenes"],
        env=sim_env(),
        episodes=lambda wc: {domain: cell_episodes(wc.group, domain) for domain in group_domains(wc.group)},
        shards=EVAL["shards"],
        gif_episodes=EVAL["gif_episodes"],
        seed=EVAL["seed"],
    log:
        f"{OUT}/logs/eval_policy/{{method}}_{{group}}_run{{run}}_{{shard}}.log",
    benchmark:
        f"{OUT}/benchmarks/eval_policy/{{method}}_{{group}}_run{{run}}_{{shard}}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=lambda wc: 10 + math.ceil(sum(cell_episodes(wc.group, d) for d in group_domains(wc.group))
                                          / EVAL["shards"] * POLICY["episode_steps"] / 60),
        gpu=EVAL["gpus"],
    wildcard_constraints:
        method="|".join(METHODS),
        group="|".join(GROUPS),
        run=r"\d+",
        shard=r"\d{3}",
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/eval_policy.py"


rule policy_results:
    """Every evaluated episode of one method, all its runs', and its success rates per cell and scene."""
    input:
        lib=library("policy_results.py"),
        episodes=lambda wc: expand(f"{OUT}/policy/eval/{wc.method}/{{task}}/run{{run}}/shard_{{shard}}.csv",
                                   task=method_tasks(wc.method), run=method_runs(wc.method), shard=EVAL_SHARDS),
    output:
        episodes=f"{OUT}/policy/eval/{{method}}/episodes.csv",
        summary=f"{OUT}/policy/eval/{{method}}/summary.json",
    log:
        f"{OUT}/logs/policy_results/{{method}}.log",
    benchmark:
        f"{OUT}/benchmarks/policy_results/{{method}}.tsv"
    resources:
        mem_mb=1000,
        runtime=5,
    wildcard_constraints:
        method="|".join(METHODS),
    conda:
        "../../envs/roboscape.yaml"
    script:
        "../scripts/policy_results.py"
