"""Wire protocol adapters: TF Serving's REST and gRPC edges around the engine."""
