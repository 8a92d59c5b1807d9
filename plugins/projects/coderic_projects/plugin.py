"""The projects plugin: members start open projects, gather contributors, post updates.

Every hook only declares; the work is in the modules named. See ``docs/projects.md``."""

from __future__ import annotations

from pathlib import Path

from coderic_sdk import (
    CronJob,
    EmailTemplate,
    EventHandler,
    FilePurpose,
    Job,
    NotificationType,
    Permission,
    PersonalData,
    PluginContext,
    PluginSettings,
    ProfileSection,
    ResourcePolicy,
    Role,
    Route,
    hookimpl,
)
from coderic_sdk.search import SearchIndex

from . import access, github, profile, search
from .personal_data import personal_data
from .piccolo_app import APP_CONFIG
from .routes import all_routes
from .settings import ProjectsSettings

TEMPLATES = Path(__file__).parent / "templates"
_SAMPLE = {"project_name": "Kernel", "url": "https://coderic.example/projects/kernel"}


@hookimpl
def register_settings_model() -> type[PluginSettings]:
    return ProjectsSettings


@hookimpl
def register_piccolo_app():  # type: ignore[no-untyped-def]
    return APP_CONFIG


@hookimpl
def register_routes() -> list[Route]:
    return all_routes()


@hookimpl
def register_permissions() -> tuple[Permission, ...]:
    return access.PERMISSIONS


@hookimpl
def register_roles() -> tuple[Role, ...]:
    return access.ROLES


@hookimpl
def register_resource_policies(plugin: PluginContext) -> list[ResourcePolicy]:
    return [access.policy(plugin)]


@hookimpl
def register_notification_types() -> list[NotificationType]:
    return [
        NotificationType("projects.update", "Updates of projects you follow or belong to",
                         default_channels=("in_app", "email"), email_template="projects.update"),
        NotificationType("projects.invitation", "Invitations to join a project", default_channels=("in_app", "email"),
                         email_template="projects.invitation", digestible=False),
        NotificationType("projects.join_request", "Requests to join a project you own", default_channels=("in_app",)),
    ]


@hookimpl
def register_email_templates() -> list[EmailTemplate]:
    return [
        EmailTemplate("update", TEMPLATES, category="notifications",
                      sample={**_SAMPLE, "update_title": "Version 0.2 is out", "title": "Kernel: Version 0.2 is out",
                              "body": "Email, jobs and notifications."}),
        EmailTemplate("invitation", TEMPLATES, category="notifications",
                      sample={**_SAMPLE, "role": "contributor", "body": "We need help with the docs!",
                              "title": "You are invited to join Kernel", "expires_days": 14}),
    ]


@hookimpl
def register_file_purposes() -> list[FilePurpose]:
    return [FilePurpose("cover", max_bytes=5_000_000, allowed_types=("image/png", "image/jpeg", "image/webp"),
                        visibility="public", variants={"small": 320, "large": 1280}, attach=True,
                        description="A project's cover image.")]


@hookimpl
def register_profile_sections() -> list[ProfileSection]:
    return [profile.SECTION]


@hookimpl
def register_personal_data(plugin: PluginContext) -> list[PersonalData]:
    return [personal_data(plugin)]


@hookimpl
def register_jobs() -> list[Job | CronJob]:
    return [Job("github_sync", github.sync, max_attempts=4, timeout=30, backoff=60),
            CronJob("github_refresh", github.refresh_stale, minute=17, timeout=60)]


@hookimpl
def register_search_indexes() -> list[SearchIndex]:
    return [search.INDEX]


@hookimpl
def register_event_handlers(plugin: PluginContext) -> list[EventHandler]:
    return [search.refresh_on_change(plugin)]
