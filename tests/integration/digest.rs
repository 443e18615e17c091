//! Integration tests for `digest`.
