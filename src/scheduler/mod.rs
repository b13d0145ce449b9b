//! The scheduler (to be written).
