"""Placement: contracts onto nodes (allocation, healing, spot, drains) and jobs onto GPUs
(the queue and its policies, shared by the live system and the trace simulator)."""
