"""Engines that run the same pipeline beyond one process: `archive` (inputs, shards, reassembly) and Ray."""
