//! Threads deep enough for the planner.
//!
//! DataFusion's planner, optimizer and expression evaluation walk expression trees
//! recursively, and so do the derived `Clone`, `PartialEq`, `Hash` and `Drop` of its
//! expressions, which its `recursive_protection` feature does not cover. A segment that is an
//! `or` of 600 conditions is a 600-deep tree and overflowed the 2 MiB stacks of tokio's worker
//! threads (the process aborts: no error, the run left `running`). Every thread that may plan
//! or run a query gets [`QUERY_THREAD_STACK_BYTES`] instead: address space is reserved, memory
//! is used only as deep as a query really goes. The limits that bound how deep a query can be
//! ([`crate::MAX_EXPRESSION_DEPTH`], the segment limits in `wharf_domain::segment`) are tested
//! at their edge on these stacks, in debug builds, whose frames are the largest.

/// Stack size of every thread that may plan or run a query.
pub const QUERY_THREAD_STACK_BYTES: usize = 256 * 1024 * 1024;

/// A multi-threaded tokio runtime whose worker and blocking threads have
/// [`QUERY_THREAD_STACK_BYTES`] stacks.
pub fn runtime(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads.max(1))
        .thread_stack_size(QUERY_THREAD_STACK_BYTES)
        .enable_all()
        .build()
}

/// Runs `work` on a new thread with a [`QUERY_THREAD_STACK_BYTES`] stack and returns what it
/// returns: for the future a runtime blocks on, which runs on the calling thread otherwise.
pub fn on_query_stack<R: Send>(work: impl FnOnce() -> R + Send) -> std::io::Result<R> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("wharf-main".into())
            .stack_size(QUERY_THREAD_STACK_BYTES)
            .spawn_scoped(scope, work)?;
        handle
            .join()
            .map_err(|_| std::io::Error::other("the main thread panicked"))
    })
}

/// Runs `future` to completion as the `wharf` binary does: on a query-sized stack, in a
/// [`runtime`] with two workers. For tests that must behave as the binary.
pub fn block_on<F: std::future::Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    #[allow(clippy::expect_used)]
    on_query_stack(|| runtime(2).expect("a tokio runtime").block_on(future))
        .expect("the query thread")
}
