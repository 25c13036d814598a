"""TF Serving's REST API: tornado routes, thin handlers, and the JSON codec."""
