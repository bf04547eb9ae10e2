"""OpenVLA-7B, the paper's second policy: a Prismatic-style VLA (:mod:`.model`), its action tokens
(:mod:`.actions`) and the adapter that gives it the policies' interface (:mod:`.policy`)."""

from roboscape.policy.openvla.policy import OpenVLAPolicy, OpenVLAPolicyConfig

__all__ = ["OpenVLAPolicy", "OpenVLAPolicyConfig"]
