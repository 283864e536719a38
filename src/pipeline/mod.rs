//! The optimization pipeline: windows → proposals → cost → verification →
//! patch.

pub mod optimize;
pub mod preprocess;
pub mod search;
pub mod windows;
