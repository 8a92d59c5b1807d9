"""Every test of the projects plugin runs a kernel with the plugin enabled (see ``projects_testing``)."""

from projects_testing import coderic_config, coderic_plugins

__all__ = ["coderic_config", "coderic_plugins"]
