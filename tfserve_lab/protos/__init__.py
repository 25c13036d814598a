"""TF Serving protos the tensorflow-serving-api wheel lacks, compiled by scripts/gen-protos."""
