"""Model architectures: teacher/student generators, discriminators, registries, MAC counter."""
