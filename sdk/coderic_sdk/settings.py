"""Base class for a plugin's settings table in ``plugins.toml``."""

from pydantic import BaseModel, ConfigDict, SecretStr

#: A value that is redacted by ``coderic config show`` and never logged.
Secret = SecretStr


class PluginSettings(BaseModel):
    """Subclass this and return the class from ``register_settings_model``.

    Unknown keys are refused (a typo in ``plugins.toml`` must not pass silently) and the
    validated object is frozen: settings are read once at start-up.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
