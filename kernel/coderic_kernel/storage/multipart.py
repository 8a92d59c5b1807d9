"""A ``multipart/form-data`` upload read as it arrives: text fields first, then one file.

Starlette's ``request.form()`` spools whole files to disk before a handler sees them; this
parser hands the file's bytes on as they are received, so they are validated (size, type)
and stored while streaming, and nothing is written before the checks allow it. The fields
must come before the ``file`` part (browsers send parts in form order); parts after the
file are ignored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from coderic_sdk import FieldError, Problem
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

FIELD_MAX_BYTES = 1024
MAX_FIELDS = 16
FILE_FIELD = "file"


@dataclass
class Upload:
    fields: dict[str, str]
    filename: str
    chunks: AsyncIterator[bytes]


@dataclass
class _State:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_name: bytes = b""
    header_value: bytes = b""
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)
    fields: dict[str, str] = field(default_factory=dict)
    in_file: bool = False
    file_started: bool = False
    file_done: bool = False
    data: list[bytes] = field(default_factory=list)


async def read_upload(request: Request) -> Upload:
    """The fields before the file part, and the file's bytes as an async iterator."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise Problem(415, "Send the file as multipart/form-data.", headers={"Accept-Post": "multipart/form-data"})
    state = _State()
    parser = MultipartParser(boundary, _callbacks(state))
    stream = request.stream().__aiter__()
    async for chunk in stream:
        _feed(parser, chunk)
        if state.file_started:
            break
    if not state.file_started:
        raise Problem(422, "The form has no file.", errors=[FieldError("body.file", "a file part is required", "missing")])
    return Upload(state.fields, state.filename or "", _file_chunks(state, parser, stream))


async def _file_chunks(state: _State, parser: MultipartParser, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    while True:
        if state.data:
            pending, state.data = state.data, []
            for piece in pending:
                yield piece
        if state.file_done:
            return
        try:
            chunk = await stream.__anext__()
        except StopAsyncIteration:
            raise Problem(400, "The multipart body ends before the file does.") from None
        _feed(parser, chunk)


def _feed(parser: MultipartParser, chunk: bytes) -> None:
    try:
        parser.write(chunk)
    except MultipartParseError as exc:
        raise Problem(400, f"The multipart body is malformed: {exc}.") from None


def _callbacks(state: _State) -> dict[str, object]:
    def on_part_begin() -> None:
        state.headers = {}
        state.value = bytearray()
        state.in_file = False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        state.headers[state.header_name.lower()] = state.header_value
        state.header_name, state.header_value = b"", b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(state.headers.get(b"content-disposition", b""))
        state.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if state.name == FILE_FIELD and not state.file_started:
            state.in_file = state.file_started = True
            state.filename = filename.decode("utf-8", "replace") if filename is not None else ""
        elif state.file_started:
            state.name = ""  # after the file: ignored

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.in_file:
            state.data.append(bytes(data[start:end]))
        elif state.name and not state.file_started:
            state.value += data[start:end]
            if len(state.value) > FIELD_MAX_BYTES:
                raise Problem(422, f"Form field {state.name!r} is longer than {FIELD_MAX_BYTES} bytes.")

    def on_part_end() -> None:
        if state.in_file:
            state.in_file = False
            state.file_done = True
        elif state.name and not state.file_started:
            if len(state.fields) >= MAX_FIELDS:
                raise Problem(422, "The form has too many fields.")
            state.fields[state.name] = state.value.decode("utf-8", "replace")

    return {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
