//! seccomp filters that refuse one system call, as a container runtime's profile or an
//! older kernel would: how tests and the benchmark force the fallback paths.

/// Installs, in every thread of this process, a filter that makes system call `nr`
/// fail with `errno` (EPERM: a seccomp profile that does not know it; ENOSYS: a kernel
/// without it). Threads started later inherit it.
pub fn refuse(nr: i64, errno: i32) {
    refuse_when(nr, vec![], errno);
}

/// As `refuse`, only for calls that match one of `rules` (none: every call of `nr`).
fn refuse_when(nr: i64, rules: Vec<seccompiler::SeccompRule>, errno: i32) {
    use seccompiler::{
        apply_filter_all_threads, BpfProgram, SeccompAction, SeccompFilter, TargetArch,
    };
    let filter = SeccompFilter::new(
        [(nr, rules)].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        TargetArch::try_from(std::env::consts::ARCH).expect("a CPU seccompiler knows"),
    )
    .expect("a valid filter");
    let program = BpfProgram::try_from(filter).expect("the filter compiles to BPF");
    apply_filter_all_threads(&program).expect("the kernel takes the filter");
}

/// Refuses futex_waitv (Linux 5.16) with `errno`.
#[allow(dead_code)] // each test binary uses what it needs
pub fn refuse_futex_waitv(errno: i32) {
    const SYS_FUTEX_WAITV: i64 = 449; // the same number on x86_64 and aarch64
    refuse(SYS_FUTEX_WAITV, errno);
}

/// Refuses renameat2 (Linux 3.15) with `errno`.
#[allow(dead_code)]
pub fn refuse_renameat2(errno: i32) {
    refuse(libc::SYS_renameat2, errno);
}

/// Refuses madvise(2) with advice `advice` (and only that advice) with `errno`, as a
/// kernel older than the advice answers (EINVAL).
#[allow(dead_code)]
pub fn refuse_madvise(advice: i32, errno: i32) {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    let is_advice =
        SeccompCondition::new(2, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, advice as u64)
            .expect("a valid condition");
    let rule = SeccompRule::new(vec![is_advice]).expect("a valid rule");
    refuse_when(libc::SYS_madvise, vec![rule], errno);
}
