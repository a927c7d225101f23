"""The REST contract: one module of msgspec bodies per area of the API, mirroring ``routes/``.

Response bodies copy ``spoton.v1`` messages field for field (``tests/facade/test_proto_mirror.py``
checks each against its message, so a proto field cannot be dropped from REST unnoticed);
request bodies carry what a client may send. :mod:`spoton_facade.schemas.core` holds the shared
:func:`~spoton_facade.schemas.core.from_proto` and the health, task and catalog bodies.
"""
