//! What the benchmarks of `make bench` share (`discovery-bench`,
//! `execution-bench`): the count of every request on the wire, list prices,
//! an Organization in the emulator, and the processor workers that run in
//! child processes of their own. Benchmark infrastructure only: no function
//! links it.

pub mod bench;
