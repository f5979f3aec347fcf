//! workload generator
