/// @file worker_pool.hpp
/// @brief The CPU ops' threads: a fixed set of workers that wait for a parallel loop to hand them work.
///
/// The CPU path has one pool of threads, this one (OpenBLAS itself is kept to one thread and called from here).
/// Between loops its workers watch for the next one for some tens of microseconds (the gaps inside a training
/// step are mostly shorter), then block on a condition variable, so a thread with nothing to do soon costs
/// nothing, not even system time, unlike OpenBLAS's threads, which spin in sched_yield; the calling thread works
/// too. A loop's tasks are taken in any order by any thread, so a task's result must not depend on which thread
/// runs it or on what ran before: that is what makes the ops give the same bits at any thread count.
#pragma once

#include <cstdint>
#include <functional>

namespace ladder::ops::cpu {

/// One task of a parallel loop: `index` is its number, `slot` (below worker_threads()) the thread running it
/// within this loop, so that a loop can give each thread its own scratch.
using ParallelTask = std::function<void(std::int64_t index, int slot)>;

/// Sets how many threads the CPU ops use, the caller included: 0 means the default (OPENBLAS_NUM_THREADS if the
/// environment sets it, else one per core).
void set_worker_threads(int threads);

/// How many threads the CPU ops use (at least 1).
int worker_threads();

/// Runs task(index, slot) for every index in [0, count) on the pool's threads and returns when all have run,
/// rethrowing the first exception a task threw. Called from inside a task, or while another thread's loop
/// holds the pool, it runs the tasks itself, one after another, with slot 0.
void parallel_for(std::int64_t count, const ParallelTask& task);

}  // namespace ladder::ops::cpu
