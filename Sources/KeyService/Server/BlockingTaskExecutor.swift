import NIOPosix

/// Threads of their own for request tasks whose storage calls block on a network round trip (PostgreSQL).
///
/// Storage calls are synchronous. On the SQLite store they take microseconds, and the tasks run on Swift's global
/// executor, which has one thread per CPU. A PostgreSQL call waits for the database (and, for a write, its fsync'd
/// commit): on the global executor, two waiting calls would stop every other task of a 2-CPU machine, and at most
/// two writes could be in the database at once, which leaves nothing for its group commit. A clustered vhsmd runs its
/// request tasks here instead (`Task(executorPreference:)`): up to `threads` calls wait on the database at once, and
/// the global executor stays free.
package final class BlockingTaskExecutor: TaskExecutor {
    private let pool: NIOThreadPool

    package init(threads: Int) {
        pool = NIOThreadPool(numberOfThreads: max(threads, 1))
        pool.start()
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        pool.submit { _ in job.runSynchronously(on: executor) }
    }
}
