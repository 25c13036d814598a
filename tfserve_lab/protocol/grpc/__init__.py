"""TF Serving's gRPC API: servicers, TensorProto codec and server."""
