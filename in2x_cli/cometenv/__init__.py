"""Scripts that run inside the separate COMET environment (never imported by in2x itself).

They are started as ``<comet-python> <this dir>/worker.py`` so their ``sys.path[0]`` is this
directory, which must not contain a module named ``comet``.
"""
