//! placeholder
pub mod model;
pub mod problem;
pub use model::*;
pub use problem::*;
