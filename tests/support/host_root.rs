//! Temporary host roots (being written).
