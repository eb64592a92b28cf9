"""Generated protobuf and gRPC code (proto/generate.py): do not edit."""
