//! Image inversion (to be written).
