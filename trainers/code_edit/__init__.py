"""Code-edit phase trainers side: embedded data generator and the SRL reward."""
