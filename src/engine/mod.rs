//! The discrete-event core: simulated time, a pending-event queue ordered by
//! (time, insertion sequence), and seeded random streams.
//!
//! The engine knows nothing about GPUs, networks or models. Ordering guarantee: events
//! fire in non-decreasing time; events scheduled for the same time fire in the order they
//! were scheduled (FIFO), so a run is a pure function of its inputs.

pub mod hash;
pub mod queue;
pub mod rng;

pub use queue::EventQueue;
