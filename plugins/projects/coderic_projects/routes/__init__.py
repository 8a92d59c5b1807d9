"""Every route of the plugin, mounted under ``/api/v1/projects``."""

from coderic_sdk import Route

from . import invitations, members, projects, updates


def all_routes() -> list[Route]:
    return [*projects.routes(), *members.routes(), *invitations.routes(), *updates.routes()]
