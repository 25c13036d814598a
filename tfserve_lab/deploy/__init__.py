"""Deployment targets beyond the notebook: Kubernetes manifests for real TF Serving."""
