//! Integration tests for `message`.
