"""Embedded stack: Triton, PostgreSQL, Redis and our services as supervised children.

Everything listens on 127.0.0.1 with its data under ``settings.data_dir``. Entry point:
:class:`spoton_inference.embedded.stack.EmbeddedStack`.
"""
