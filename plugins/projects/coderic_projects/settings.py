"""``[plugins.projects]`` in ``plugins.toml`` (or ``CODERIC_PLUGINS__PROJECTS__<KEY>``)."""

from __future__ import annotations

from coderic_sdk import PluginSettings, Secret
from pydantic import Field


class ProjectsSettings(PluginSettings):
    invitation_days: int = Field(14, ge=1, le=365, description="Days an invitation can be accepted.")
    github_sync: bool = Field(False, description="Fetch stars, language and last push of linked GitHub repositories.")
    github_api_url: str = Field("https://api.github.com", pattern=r"^https?://", description="The GitHub API's base URL.")
    github_token: Secret | None = Field(None, description="A token for GitHub's higher rate limit (optional).")
    github_refresh_hours: float = Field(6.0, gt=0, le=24 * 30, description="How old stats may get before a refresh.")
