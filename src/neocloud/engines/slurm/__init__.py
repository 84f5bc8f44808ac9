"""The Slurm engine: scontrol and sacctmgr to shape the cluster, sacct and scontrol to read
it back (see docs/engines.md)."""
