//! Demo images (to be written).
