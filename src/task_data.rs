//! The TaskInfo.data payload (to be written).
