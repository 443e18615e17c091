//! Integration tests for `subscribers`.
