//! The metrics endpoint (`--metrics`): the HTTP a scraper speaks and the formats it reads.

pub mod exposition;
pub mod http;
