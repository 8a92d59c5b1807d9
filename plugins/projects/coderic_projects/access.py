"""Who may do what with a project: the plugin's permissions, its scoped roles, and its resource
policy (a public project is visible to anyone; nothing is done to a deleted one; an archived
one is read-only)."""

from __future__ import annotations

from coderic_sdk import CurrentUser, Permission, PluginContext, Resource, ResourcePolicy, Role

from .tables import Project

RESOURCE = "projects.project"
OWNER, MAINTAINER, CONTRIBUTOR = "project_owner", "projects.maintainer", "projects.contributor"
#: A member's role in the project (what the API says) -> the role granted on the project.
GRANTED_ROLE = {"owner": OWNER, "maintainer": MAINTAINER, "contributor": CONTRIBUTOR}

VIEW = "projects.view"
VIEW_ALL = "projects.view_all"
CREATE = "projects.create"
EDIT = "projects.edit"
DELETE = "projects.delete"
ARCHIVE = "projects.archive"
MANAGE_MEMBERS = "projects.manage_members"
POST_UPDATE = "projects.post_update"
JOIN = "projects.join"
FOLLOW = "projects.follow"
#: Nothing changes an archived project but (un)archiving and deleting it.
_ARCHIVED_ALLOWS = {VIEW, ARCHIVE, DELETE, FOLLOW}

PERMISSIONS = (
    Permission(VIEW, "See a project that is not public (public ones anyone sees).",
               default_roles=(OWNER, MAINTAINER, CONTRIBUTOR, "moderator")),
    Permission(VIEW_ALL, "See every project in lists, private ones included.", default_roles=("moderator",)),
    Permission(CREATE, "Start a project.", default_roles=("member",)),
    Permission(EDIT, "Edit a project's details.", default_roles=(OWNER, MAINTAINER)),
    Permission(DELETE, "Delete a project.", default_roles=(OWNER,)),
    Permission(ARCHIVE, "Archive or unarchive a project.", default_roles=(OWNER,)),
    Permission(MANAGE_MEMBERS, "Invite, approve, remove members and change their roles; transfer ownership.",
               default_roles=(OWNER,)),
    Permission(POST_UPDATE, "Post an update to a project's followers and members.", default_roles=(OWNER, MAINTAINER)),
    Permission(JOIN, "Ask to join a project.", default_roles=("member",)),
    Permission(FOLLOW, "Follow a project.", default_roles=("member",)),
)

ROLES = (
    Role(MAINTAINER, "Maintains one project: edits it and posts updates.", scoped=True, resource_type=RESOURCE),
    Role(CONTRIBUTOR, "Contributes to one project; sees it even when it is private.", scoped=True, resource_type=RESOURCE),
)


def resource(project_id: int) -> Resource:
    return Resource(RESOURCE, str(project_id))


async def _load(resource: Resource) -> dict[str, object] | None:
    if not resource.id.isdigit() or int(resource.id) > 2**31 - 1:
        return None
    return await Project.select(Project.visibility, Project.archived_at).where(  # type: ignore[no-any-return]
        (Project.id == int(resource.id)) & Project.deleted_at.is_null()
    ).first()


def policy(plugin: PluginContext) -> ResourcePolicy:
    """Visibility decides ``projects.view`` for public and members-only projects; everything
    else needs the caller to see the project first, so a private one answers 404, never 403."""

    async def decide(user: CurrentUser | None, permission: str, target: Resource) -> bool | None:
        project = await _load(target)
        if project is None:
            return False
        if permission == VIEW:
            if project["visibility"] == "public" or (project["visibility"] == "members" and user is not None):
                return True
            return None
        if not await plugin.permissions.allowed(user, VIEW, target):
            return False
        if project["archived_at"] is not None and permission not in _ARCHIVED_ALLOWS:
            return False
        return None

    async def visible(user: CurrentUser | None, target: Resource) -> bool:
        return await _load(target) is not None and await plugin.permissions.allowed(user, VIEW, target)

    return ResourcePolicy(RESOURCE, decide=decide, visible=visible)
