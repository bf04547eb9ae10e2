"""roboscape: RoboScape-R, world models as general RL environments for robot manipulation.

The library is split by pipeline stage; each module owns one idea and its data contract:

- ``roboscape.sim``: the ManiSkill3 tasks, the scene catalogue and the MPLib trajectory generator;
- ``roboscape.data``: the trajectory HDF5 contract, fixed-length clips and the streaming Dataset.
"""

__version__ = "0.1.0"
