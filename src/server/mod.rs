//! The file server (to be written).
