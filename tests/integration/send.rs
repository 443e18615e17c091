//! Integration tests for `send`.
