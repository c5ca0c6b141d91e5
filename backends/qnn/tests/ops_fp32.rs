//! Every op in the QNN mapping table that has an fp32 kernel, on the HTP simulator with no
//! SoC (exact fp32), against xnpu's CPU reference at fp32 tolerances. A process of its own:
//! the simulator keeps the first SoC setting of a process (see ops_common).

mod ops_common;

use ops_common::*;

#[test]
fn every_case_with_an_fp32_kernel_runs_in_exact_fp32_like_the_reference() {
    run_all(0, |case, big| case.fp32_tol.map(|t| t * (1.0 + big)));
}
