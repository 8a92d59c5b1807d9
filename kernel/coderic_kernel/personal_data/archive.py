"""The archive of a member's data: a zip with one JSON file per plugin and their files.

    README.txt          what this is (English and Spanish)
    manifest.json       who, when, which plugin file holds what, files missing from storage
    <plugin>.json       {"plugin", "version", "data": {<personal data name>: <its export>}}
    files/<id>/<name>   the bytes of every file the member owns (listed in files.json)

It is written to a temporary file, never held in memory whole: files may be large.
"""

from __future__ import annotations

import json
import zipfile
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from ..storage.service import store_for
from .files import archive_path, owned
from .registry import personal_data_for

if TYPE_CHECKING:
    from ..kernel import Kernel

README = """Your data from Coderic / Tus datos de Coderic

manifest.json  - when this archive was made and what each file holds
                 cuándo se hizo este archivo y qué contiene cada fichero
<plugin>.json  - what each part of the platform keeps about you, as JSON
                 lo que cada parte de la plataforma guarda sobre ti, en JSON
files/         - the files you uploaded (files.json lists them)
                 los ficheros que subiste (files.json los enumera)
"""


class ExportError(Exception):
    """A plugin's export cannot go into the archive (not JSON-safe); names the plugin."""


def _json(value: Any, what: str) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, indent=2, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ExportError(f"{what} is not JSON-safe: {exc}") from exc


async def write_archive(kernel: Kernel, user_id: str, target: IO[bytes]) -> dict[str, Any]:
    """Write the member's archive to ``target``; return its manifest."""
    registry = personal_data_for(kernel)
    versions = {info.name: info.version for info in kernel.plugins}
    manifest: dict[str, Any] = {
        "user_id": user_id, "created_at": datetime.now(timezone.utc).isoformat(), "plugins": {}, "files": 0,
        "missing_files": [],
    }
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        archive.writestr("README.txt", README)
        for plugin, entries in registry.declared.items():
            data = {}
            for entry in entries:
                data[entry.name] = await entry.export(user_id)
            body = {"plugin": plugin, "version": versions.get(plugin, ""), "data": data}
            archive.writestr(f"{plugin}.json", _json(body, f"the export of plugin {plugin!r}"))
            manifest["plugins"][plugin] = {"file": f"{plugin}.json", "data": [entry.name for entry in entries]}
        store = store_for(kernel)
        for record in await owned(user_id):
            if record.status != "stored":
                continue
            if await store.backend.size(record.key) is None:  # a lifecycle rule removed it before its record
                manifest["missing_files"].append(record.uid)
                continue
            entry = zipfile.ZipInfo(archive_path(record), _zip_time(record.created_at))  # stored: files are often compressed
            with archive.open(entry, "w", force_zip64=True) as out:
                async for chunk in store.open(record):
                    out.write(chunk)
            manifest["files"] += 1
        archive.writestr("manifest.json", _json(manifest, "the manifest"))
    return manifest


def _zip_time(when: Any) -> tuple[int, int, int, int, int, int]:
    moment = when if isinstance(when, datetime) and when.year >= 1980 else datetime.now(timezone.utc)
    return moment.timetuple()[:6]
