//! Globs (STUB).
