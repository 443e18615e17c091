//! Integration tests for `articles`.
