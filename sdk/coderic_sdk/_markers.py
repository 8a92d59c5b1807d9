"""The pluggy markers. Only ``hookimpl`` is public: plugins implement, the kernel specifies."""

import pluggy

PROJECT_NAME = "coderic"
ENTRY_POINT_GROUP = "coderic.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
