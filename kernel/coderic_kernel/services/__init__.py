"""Kernel services offered to plugins through the SDK: each has an in-process implementation
for the embedded default and a Redis one for production, behind one interface."""
