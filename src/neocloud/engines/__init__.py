"""Engines: carrying contracts onto the workload managers customers submit jobs to."""
