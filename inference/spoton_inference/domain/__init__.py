"""Domain: the service's types, errors and pure rules.

Environments, cameras and their sources, zones, homographies, the shapes of jobs and events,
principals and scoping, rate limits. No I/O, no transport, no settings: these modules import
only each other, the standard library, numpy, msgspec and OpenCV's matrix maths, so every
other layer can depend on them and they depend on none. Loading an environment from disk
lives in ``spoton_inference.files.environment_dir``.
"""
