"""Search through the kernel (issue 10): a plugin's index fed through the outbox, ``GET
/api/v1/search`` and a plugin's own search route, permissions (private, members-only,
permission-held and deleted documents never shown to whom may not see them, even before the
index catches up), the filter syntax's 422s, hostile queries, the ``auth.users`` index,
catch-up and reindexing. The backends themselves are in ``test_search_backends.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from coderic_kernel.jobs.tables import OutboxEntry
from coderic_kernel.search.service import search_for
from coderic_sdk import SearchDocument
from fakeplugins import FakePlugin, FakeSite, fake_plugins  # noqa: F401
from services import eventually

CATALOG = FakePlugin("catalog", """
from datetime import datetime, timezone
from coderic_sdk import (Permission, SearchAttribute, SearchDocument, SearchField, SearchIndex, search_route)

#: The plugin's "database": id -> (fields, visibility, owner, changed at)
ITEMS = {}


def document(key):
    fields, visibility, owner, _ = ITEMS[key]
    return SearchDocument(key, fields, visibility=visibility, owner_id=owner)


async def documents(since):
    for key, (_, _, _, changed) in sorted(ITEMS.items()):
        if since is None or changed >= since:
            yield document(key)


async def fetch(ids):
    return {key: document(key) for key in ids if key in ITEMS}


def put(key, fields, visibility="public", owner=None):
    ITEMS[key] = (fields, visibility, owner, datetime.now(timezone.utc))


@hookimpl
def register_search_indexes():
    return [SearchIndex(
        "items",
        fields=(SearchField("title", 3), SearchField("body", 1)),
        attributes=(SearchAttribute("kind", facetable=True, sortable=True), SearchAttribute("tags", "keywords", facetable=True),
                    SearchAttribute("price", "number", sortable=True)),
        documents=documents, fetch=fetch,
    )]


@hookimpl
def register_permissions():
    return [Permission("catalog.review", "See items waiting for review", default_roles=("moderator",))]


@hookimpl
def register_routes():
    return [search_route("items")]
""")


@pytest.fixture
def coderic_plugins(fake_plugins: FakeSite) -> list[str]:  # noqa: F811
    fake_plugins.install(CATALOG)
    return ["catalog"]


@pytest.fixture
def coderic_config(tmp_path: Path) -> dict[str, Any]:
    return {"outbox_poll_seconds": 0.05, "rate_limit_enabled": False, "search_sync_minutes": 0}


def store() -> Any:
    import fake_catalog

    fake_catalog.ITEMS.clear()
    return fake_catalog


async def found(client: Any, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def ids(client: Any, **params: Any) -> set[str]:
    return {h["id"] for h in (await found(client, **params))["hits"]}


async def indexed(running: Any, count: int) -> None:
    service = search_for(running.kernel)
    index = service.index("catalog.items")

    async def enough() -> bool:
        return await service.backend.count(index) >= count

    await eventually(enough, timeout=10, what=f"{count} documents in catalog.items")


async def put_and_index(running: Any, key: str, fields: dict[str, Any], visibility: str = "public",
                        owner: str | None = None) -> None:
    catalog = __import__("fake_catalog")
    catalog.put(key, fields, visibility, owner)
    await running.plugin("catalog").search.refresh("items", key)


async def test_documents_go_through_the_outbox_and_are_found_with_highlights_and_facets(coderic_kernel: Any) -> None:
    catalog = store()
    search = coderic_kernel.plugin("catalog").search
    items = {
        "1": {"title": "Blue <b>whale</b> poster", "body": "Ocean art", "kind": "poster", "tags": ["sea", "art"], "price": 12},
        "2": {"title": "Dolphin mug", "body": "A whale of a mug", "kind": "mug", "tags": ["sea"], "price": 8},
        "3": {"title": "Forest map", "body": "Trees", "kind": "poster", "tags": ["land"], "price": 20},
    }
    for key, fields in items.items():
        catalog.put(key, fields)
    await search.index("items", [SearchDocument(key, fields) for key, fields in items.items()])
    await indexed(coderic_kernel, 3)
    body = await found(coderic_kernel.client, q="whale", index="catalog.items", facets="kind,tags")
    assert [h["id"] for h in body["hits"]] == ["1", "2"]  # the title match first
    assert body["total"] == 2 and body["took_ms"] >= 0 and body["page"] == 1
    assert body["total_estimated"] is False and body["facets_estimated"] is False
    assert body["facets"] == {"kind": {"poster": 1, "mug": 1}, "tags": {"sea": 2, "art": 1}}
    title = body["hits"][0]["highlights"]["title"]
    assert "&lt;b&gt;<mark>whale</mark>&lt;/b&gt;" in title and "<b>" not in title
    assert body["hits"][0]["fields"]["price"] == 12 and body["hits"][0]["index"] == "catalog.items"
    sorted_ = await found(coderic_kernel.client, index="catalog.items", sort="price:desc", filter="kind = poster")
    assert [h["id"] for h in sorted_["hits"]] == ["3", "1"]
    # the plugin's own route searches its index only
    own = await coderic_kernel.client.get("/api/v1/catalog/search", params={"q": "whale", "filter": "tags = art"})
    assert own.status_code == 200 and [h["id"] for h in own.json()["hits"]] == ["1"]
    del catalog.ITEMS["1"]
    await search.delete("items", ["1"])

    async def gone() -> bool:
        return await ids(coderic_kernel.client, q="whale") == {"2"}

    await eventually(gone, timeout=10, what="the deleted document gone")


async def test_an_index_update_is_written_in_the_callers_transaction(coderic_kernel: Any) -> None:
    search = coderic_kernel.plugin("catalog").search
    before = await OutboxEntry.count()
    with pytest.raises(RuntimeError):
        async with coderic_kernel.kernel.database.transaction():
            await search.index("items", SearchDocument("9", {"title": "Rolled back"}))
            raise RuntimeError("rollback")
    assert await OutboxEntry.count() == before
    await asyncio.sleep(0.3)
    assert await ids(coderic_kernel.client, q="rolled") == set()


async def test_bad_writes_are_refused_in_the_caller(coderic_kernel: Any) -> None:
    search = coderic_kernel.plugin("catalog").search
    with pytest.raises(ValueError, match="unknown search index"):
        await search.index("nope", SearchDocument("1", {"title": "x"}))
    with pytest.raises(ValueError, match="own search indexes"):
        await search.index("auth.users", SearchDocument("1", {"name": "x"}))
    with pytest.raises(ValueError, match="number"):
        await search.index("items", SearchDocument("1", {"title": "x", "price": "cheap"}))
    with pytest.raises(ValueError, match="visibility"):
        SearchDocument("1", {}, visibility="friends")


async def test_private_members_only_and_permission_documents_are_seen_only_by_whom_may(coderic_kernel: Any) -> None:
    store()
    ana = await coderic_kernel.create_user("ana@example.org")
    bea = await coderic_kernel.create_user("bea@example.org")
    mod = await coderic_kernel.create_user("mod@example.org", roles=["moderator"])
    as_ana, as_bea, as_mod = [await coderic_kernel.sign_in(u) for u in (ana, bea, mod)]
    await put_and_index(coderic_kernel, "pub", {"title": "Otter public"})
    await put_and_index(coderic_kernel, "mem", {"title": "Otter members"}, "members")
    await put_and_index(coderic_kernel, "ana", {"title": "Otter draft of Ana"}, "private", ana)
    await put_and_index(coderic_kernel, "rev", {"title": "Otter under review"}, "catalog.review")
    await put_and_index(coderic_kernel, "rev2", {"title": "Otter of Bea under review"}, "catalog.review", bea)
    await indexed(coderic_kernel, 5)
    guest = coderic_kernel.client
    assert await ids(guest, q="otter") == {"pub"}
    assert await ids(as_ana, q="otter") == {"pub", "mem", "ana"}
    assert await ids(as_bea, q="otter") == {"pub", "mem", "rev2"}  # her own document, whatever its visibility
    assert await ids(as_mod, q="otter") == {"pub", "mem", "rev", "rev2"}
    # whole pages are filled with what the searcher may see
    page = await found(guest, q="otter", per_page=1)
    assert [h["id"] for h in page["hits"]] == ["pub"]


async def test_deleted_and_newly_hidden_documents_disappear_before_the_index_catches_up(coderic_kernel: Any) -> None:
    catalog = store()
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    for key in ("a", "b", "c"):
        await put_and_index(coderic_kernel, key, {"title": f"Lynx {key}", "body": "secret plans" if key == "b" else ""})
    await indexed(coderic_kernel, 3)
    assert await ids(coderic_kernel.client, q="lynx") == {"a", "b", "c"}
    # the plugin deletes one and makes another private; the index has not heard of it yet
    del catalog.ITEMS["a"]
    catalog.put("b", {"title": "Lynx b"}, "private", "someone-else")
    assert await ids(coderic_kernel.client, q="lynx") == {"c"}
    assert await ids(as_ana, q="lynx") == {"c"}
    assert await ids(as_ana, q="secret") == set()
    # and once it has, the same
    await coderic_kernel.plugin("catalog").search.refresh("items", ["a", "b"])
    await eventually(lambda: _count(coderic_kernel, 2), timeout=10, what="the index caught up")
    assert await ids(as_ana, q="lynx") == {"c"}


async def _count(running: Any, count: int) -> bool:
    service = search_for(running.kernel)
    return await service.backend.count(service.index("catalog.items")) == count


BAD_FILTERS = [
    ("kind = ", "expected a value"),
    ("kind = (poster", "expected a value"),
    ("(kind = poster", "expected ')'"),
    ("kind = poster)", "end of the filter"),
    ("colour = red", "'colour' is not a filterable attribute"),
    ("price > cheap", "'price' is a number"),
    ("kind > poster", "only numbers and dates"),
    ("kind = poster AND", "expected an attribute name"),
    ("kind IN poster", "'[' after IN"),
    ("kind IN [a, b", "',' or ']'"),
    ("kind = 'unclosed", "unexpected character"),
    ("kind = poster; DROP TABLE kernel_user", "unexpected character"),
    ("NOT " * 40 + "kind = poster", "nests more than"),
    (" OR ".join(["kind = a"] * 70), "at most 64 conditions"),
    ("price 1 TO", "expected a value"),
]


@pytest.mark.parametrize(("expression", "problem"), BAD_FILTERS)
async def test_a_bad_filter_is_a_422_naming_the_problem(coderic_kernel: Any, expression: str, problem: str) -> None:
    response = await coderic_kernel.client.get("/api/v1/search", params={"index": "catalog.items", "filter": expression})
    assert response.status_code == 422, response.text
    body = response.json()
    assert problem in body["detail"] and body["errors"][0]["field"] == "query.filter"


async def test_bad_indexes_facets_sorts_and_pages_are_422s(coderic_kernel: Any) -> None:
    client = coderic_kernel.client
    cases = [
        ({"index": "nope.items"}, "query.index", "no search index 'nope.items'"),
        ({"index": "catalog.items", "facets": "price"}, "query.facets", "not a facetable attribute"),
        ({"index": "catalog.items", "sort": "title"}, "query.sort", "not a sortable attribute"),
        ({"index": "catalog.items", "sort": "price:up"}, "query.sort", "asc or desc"),
        ({"index": "catalog.items,auth.users", "page": 100, "per_page": 20}, "query.page", "first 1000"),
        ({"q": "x" * 1001}, "query.q", ""),
        ({"per_page": 101}, "query.per_page", ""),
    ]
    for params, field, detail in cases:
        response = await client.get("/api/v1/search", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["errors"][0]["field"] == field and detail in response.text, response.text


HOSTILE = ['"', "'", "((", "))", "a AND", "OR", "NOT", "-", "title:x", "*", "a:* & b", "NEAR(a b)", "' OR 1=1 --",
           "\\", "%_", "<script>", "\u202e", "🦦", "\x00", "x" * 1000, "the " * 200]


async def test_hostile_queries_never_answer_500(coderic_kernel: Any) -> None:
    store()
    await put_and_index(coderic_kernel, "1", {"title": "Otter"})
    for q in HOSTILE:
        for index in ("catalog.items", ""):
            response = await coderic_kernel.client.get("/api/v1/search", params={"q": q, "index": index, "facets": "kind"})
            assert response.status_code in (200, 422), (q, response.text)
    for expression in ["'", '"', "kind = \"a\\\"b\"", "kind = 'x' OR _vis = private", "kind IN [\"a\\\\\"]", "\x00"]:
        response = await coderic_kernel.client.get("/api/v1/search", params={"index": "catalog.items", "filter": expression})
        assert response.status_code in (200, 422), (expression, response.text)


async def test_several_indexes_at_once_and_the_index_list(coderic_kernel: Any) -> None:
    store()
    ana = await coderic_kernel.create_user("ana@example.org", name="Heron Ana")
    await put_and_index(coderic_kernel, "h", {"title": "Heron print", "kind": "poster"})
    await indexed(coderic_kernel, 1)
    await search_for(coderic_kernel.kernel).reindex("auth.users")
    body = await found(coderic_kernel.client, q="heron", facets="kind")
    assert {(h["index"], h["id"]) for h in body["hits"]} == {("catalog.items", "h"), ("auth.users", ana)}
    assert body["facets"] == {"kind": {"poster": 1}} and body["total"] == 2
    listed = (await coderic_kernel.client.get("/api/v1/search/indexes")).json()["indexes"]
    assert {i["name"] for i in listed} >= {"auth.users", "catalog.items"}


async def test_the_users_index_holds_public_profile_fields_only(coderic_kernel: Any) -> None:
    ana = await coderic_kernel.create_user("ana@example.org", name="Ana Pelican")
    bea = await coderic_kernel.create_user("bea@example.org", name="Bea Pelican")
    as_ana = await coderic_kernel.sign_in(ana)
    response = await as_ana.patch("/api/v1/me/profile", json={"bio": "Builds pelican feeders", "location": "Lima",
                                                              "visibility": {"bio": "private"}})
    assert response.status_code == 200, response.text
    await search_for(coderic_kernel.kernel).reindex("auth.users")
    body = await found(coderic_kernel.client, q="pelican", index="auth.users")
    assert {h["id"] for h in body["hits"]} == {ana, bea}
    fields = next(h["fields"] for h in body["hits"] if h["id"] == ana)
    assert "bio" not in fields and "location" not in fields and "email" not in str(body)
    assert await ids(coderic_kernel.client, q="feeders", index="auth.users") == set()
    # an account that is disabled leaves the results at once
    from coderic_kernel.identity.tables import User

    await User.update({User.status: "disabled"}).where(User.uid == bea)
    assert await ids(coderic_kernel.client, q="pelican", index="auth.users") == {ana}


async def test_catch_up_indexes_what_changed_since_the_last_run(coderic_kernel: Any) -> None:
    catalog = store()
    service = search_for(coderic_kernel.kernel)
    index = service.index("catalog.items")
    catalog.put("1", {"title": "Ibis one"})
    assert await service.catch_up(index) == 1  # the first run rebuilds the index
    await asyncio.sleep(0.01)
    catalog.put("2", {"title": "Ibis two"})
    assert await service.catch_up(index) == 1
    assert await ids(coderic_kernel.client, q="ibis") == {"1", "2"}
    catalog.put("3", {"title": "Ibis three"})
    assert await service.reindex("catalog.items") == 3
    assert await ids(coderic_kernel.client, q="ibis") == {"1", "2", "3"}



def test_coderic_search_reindex_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from fakeplugins import Project

    monkeypatch.chdir(tmp_path)
    project = Project(tmp_path, capsys)
    project.configure()
    assert project.run("migrate").code == 0
    done = project.run("search", "reindex")
    assert (done.code, done.lines) == (0, ["auth.users: 0 documents"]), done
    one = project.run("search", "reindex", "auth.users")
    assert (one.code, one.lines) == (0, ["auth.users: 0 documents"]), one
    unknown = project.run("search", "reindex", "nope.items")
    assert unknown.code == 1 and "there is no search index 'nope.items'" in unknown.err, unknown
    listed = project.run("search", "list")
    assert listed.code == 0 and listed.lines[0] == "backend: sqlite" and listed.lines[1].startswith("auth.users  0 documents  synced 20")
    assert (tmp_path / "var" / "coderic-search.db").exists()


async def test_the_meilisearch_backend_serves_the_api_through_the_fake(tmp_path: Path, fake_plugins: FakeSite) -> None:  # noqa: F811
    from coderic_kernel.testing import start_kernel
    from meilisearch_fake import running_fake

    fake_plugins.install(CATALOG)
    async with running_fake(api_key="operator-key") as url:
        config = {"outbox_poll_seconds": 0.05, "rate_limit_enabled": False, "search_sync_minutes": 0,
                  "search_url": url.replace("http://", "meilisearch://"), "search_api_key": "operator-key",
                  "search_index_prefix": "t" + tmp_path.name[-6:].replace("-", "_").lower()}
        async with start_kernel(plugins=["catalog"], config=config, database="sqlite", workdir=tmp_path) as running:
            store()
            assert search_for(running.kernel).backend.kind == "meilisearch"
            await put_and_index(running, "m1", {"title": "Marten <i>plush</i>", "kind": "toy", "tags": ["forest"]})
            await put_and_index(running, "m2", {"title": "Badger mug", "body": "a marten on it", "kind": "mug"})
            await indexed(running, 2)
            body = await found(running.client, q="marten", index="catalog.items", facets="kind")
            assert [h["id"] for h in body["hits"]] == ["m1", "m2"] and body["facets"] == {"kind": {"toy": 1, "mug": 1}}
            assert body["hits"][0]["highlights"]["title"] == "<mark>Marten</mark> &lt;i&gt;plush&lt;/i&gt;"
            quoted = await ids(running.client, index="catalog.items", filter='kind = "toy\\" OR _vis = \\"private"')
            assert quoted == set()  # a quote in a value stays in the value
            bad = await running.client.get("/api/v1/search", params={"filter": "_vis = private"})
            assert bad.status_code == 422  # only declared attributes, never the backend's own fields
            ready = await running.client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"]["search"] == "ok", ready.text


async def test_a_hit_shows_the_document_as_it_is_now(coderic_kernel: Any) -> None:
    catalog = store()
    await put_and_index(coderic_kernel, "s", {"title": "Stoat", "body": "the stoat's secret den"})
    await indexed(coderic_kernel, 1)
    [hit] = (await found(coderic_kernel.client, q="stoat", index="catalog.items"))["hits"]
    assert set(hit["highlights"]) == {"title", "body"}
    catalog.put("s", {"title": "Stoat"})  # the body was removed; the index has not heard yet
    [hit] = (await found(coderic_kernel.client, q="stoat", index="catalog.items"))["hits"]
    assert hit["fields"] == {"title": "Stoat"} and set(hit["highlights"]) == {"title"}


async def test_the_projects_index_through_the_api(tmp_path: Path) -> None:
    """The projects plugin's index (plugins/projects) as members search it: who sees which project,
    facets over its labels, and a deleted project gone at once."""
    from coderic_kernel.testing import start_kernel

    config = {"outbox_poll_seconds": 0.05, "rate_limit_enabled": False, "search_sync_minutes": 0}
    async with start_kernel(plugins=["projects"], config=config, database="sqlite", workdir=tmp_path) as running:
        ana, bea = await running.create_user("ana@example.org"), await running.create_user("bea@example.org")
        as_ana, as_bea = await running.sign_in(ana), await running.sign_in(bea)
        made = {}
        for visibility in ("public", "members", "private"):
            response = await as_ana.post("/api/v1/projects", json={
                "name": f"Heron {visibility} kernel", "visibility": visibility, "tags": ["python", visibility]})
            assert response.status_code == 201, response.text
            made[visibility] = str(response.json()["id"])
        assert await search_for(running.kernel).reindex("projects.projects") == 3
        assert await ids(running.client, q="heron", index="projects.projects") == {made["public"]}
        assert await ids(as_bea, q="heron", index="projects.projects") == {made["public"], made["members"]}
        assert await ids(as_ana, q="heron", index="projects.projects") == set(made.values())
        body = await found(as_ana, q="heron", index="projects.projects", facets="tags", filter="tags = python")
        assert body["facets"]["tags"] == {"python": 3, "public": 1, "members": 1, "private": 1}
        assert "<mark>Heron</mark>" in body["hits"][0]["highlights"]["name"]
        assert (await as_ana.delete(f"/api/v1/projects/{made['public']}")).status_code == 204
        assert await ids(running.client, q="heron", index="projects.projects") == set()
