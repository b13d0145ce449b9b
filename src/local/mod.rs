//! The embedded cluster (to be written).
