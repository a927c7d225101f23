"""The REST contract: one module of msgspec bodies per area of the API, mirroring ``routes/``.

Response bodies copy ``spoton.v1`` messages field for field (``tests/facade/test_proto_mirror.py``
checks each against its message, so a proto field cannot be dropped from REST unnoticed);
request bodies carry what a client may send. :mod:`spoton_facade.schemas.base` holds the shared
:func:`~spoton_facade.schemas.base.from_proto`; `health`, `tasks` and `catalog` the bodies of those areas.
"""
