pub mod content_type;
pub mod json;
pub mod proto;
pub mod recordio;
