//! Runs one sync: engine -> formats -> delivery, with diff snapshots and the run record. The only
//! crate that combines engine, formats, delivery and store. Empty until the export pipeline
//! issue.
