//! Holds the workspace-level integration tests (`tests/`) and examples (`examples/`).
