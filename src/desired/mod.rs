//! Desired state: loading, validation and conversion (being written).
