//! Integration tests for `serve`.
