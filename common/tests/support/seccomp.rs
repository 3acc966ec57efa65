//! A seccomp filter that refuses futex_waitv, as a container runtime's profile or an
//! older kernel would: how tests and the benchmark force the fallback wake-up path.

/// Installs, in every thread of this process, a filter that makes futex_waitv fail
/// with `errno` (EPERM: a seccomp profile that does not know it; ENOSYS: a kernel
/// before 5.16). Threads started later inherit it.
pub fn refuse_futex_waitv(errno: i32) {
    use seccompiler::{
        apply_filter_all_threads, BpfProgram, SeccompAction, SeccompFilter, TargetArch,
    };
    const SYS_FUTEX_WAITV: i64 = 449; // the same number on x86_64 and aarch64
    let filter = SeccompFilter::new(
        [(SYS_FUTEX_WAITV, vec![])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        TargetArch::try_from(std::env::consts::ARCH).expect("a CPU seccompiler knows"),
    )
    .expect("a valid filter");
    let program = BpfProgram::try_from(filter).expect("the filter compiles to BPF");
    apply_filter_all_threads(&program).expect("the kernel takes the filter");
}
