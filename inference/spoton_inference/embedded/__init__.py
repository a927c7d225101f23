"""Embedded stack: Triton, PostgreSQL, Redis and our services as supervised children.

Triton, PostgreSQL and Redis listen on 127.0.0.1; the gRPC API and the facade where
:class:`spoton_inference.embedded.endpoints.Listen` says. Data lives under ``settings.data_dir``. Entry point:
:class:`spoton_inference.embedded.stack.EmbeddedStack`.
"""
