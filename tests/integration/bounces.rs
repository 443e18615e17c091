//! Integration tests for `bounces`.
