//! Audio features the model consumes.

pub mod mel;
