"""Tools on top of the engine and the server: benchmarks, evaluations, the scripted caller and file chat."""
