//! Every system test, in one binary: one link and one executable instead of one per file
//! (each is some 100 MB in a debug build, and CI once ran out of disk). A file's tests are
//! the module of its name: `cargo test -p system-tests --test system convergence::`.

mod admin;
mod adversarial;
mod autonomy;
#[cfg(feature = "moto")]
mod aws_adapters;
mod bad_requests;
mod bulkheads;
mod catalog;
mod concurrency;
mod contracts;
mod convergence;
mod declarations;
mod decoding;
mod fulfillment;
mod idempotency;
mod isolation;
mod load;
mod money;
mod notifications;
mod observability;
mod openapi;
mod orders;
mod parallel_shards;
mod plumbing;
mod readme;
mod rebuild;
mod replay;
mod restart;
mod sales;
mod tracking;
mod upcasting;
