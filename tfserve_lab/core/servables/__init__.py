"""Servables: loaded model versions the engine can run."""
