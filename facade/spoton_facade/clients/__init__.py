"""The gRPC clients of the inference service, one per ``spoton.v1`` service group: thin async
wrappers that add the caller's credential and a deadline, and translate nothing else.

:mod:`spoton_facade.clients.inference` also opens the channels the others share.
"""
