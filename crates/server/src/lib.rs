//! The HTTP server: REST API, web UI and scheduler loop, over the runner through a small trait.
//! Empty until the API issue.
//!
//! It must never see Arrow, AWS SDK or sqlx types.
