"""The serving engine: models, versions, routing, batching. No HTTP, gRPC or Jupyter."""
