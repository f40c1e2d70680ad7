//! Configuration schema (STUB).
