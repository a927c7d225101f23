"""Route handlers, one controller per resource; each is a gRPC call plus a translation."""
