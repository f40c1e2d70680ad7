//! Policy engine (STUB).
