//! keyrotor's integration tests, one binary: each module was a test binary of its own, and
//! each linked the whole dependency graph (the AWS SDK included) again; as modules of one
//! binary they link once. `tools/run_tests.py` still runs the modules that start a local
//! stack side by side, each as its own process (`it <module>::…`, filtered by exact name).

mod adversaries;
mod build_features;
mod declared_actions;
mod delivery;
mod deploy;
mod end_to_end;
mod exposure;
mod fault_matrix;
mod faults;
mod functions;
mod fuzz;
mod member_policies;
mod observability;
mod organization;
mod policies;
mod probe;
mod retire;
mod scan_page;
mod statemachine;
mod window;
