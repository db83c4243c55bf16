//! Validation of every value that reaches a template (being written).
