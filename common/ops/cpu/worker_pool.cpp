// The worker pool: threads watch for a loop for a short while, then sleep on a condition variable; the caller
// publishes a loop and takes part in it, tasks are handed out through one atomic counter, and the caller waits
// until every worker is done.
#include "common/ops/cpu/worker_pool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/error.hpp"

namespace ladder::ops::cpu {

namespace {

// True on a thread while it runs a task: a loop started from inside a task runs inline instead of waiting for
// the pool it is already part of.
thread_local bool inside_task = false;

// Marks the current thread as running tasks for as long as it lives.
class InsideTask {
 public:
  InsideTask() : was_inside_(inside_task) { inside_task = true; }
  ~InsideTask() { inside_task = was_inside_; }
  InsideTask(const InsideTask&) = delete;
  InsideTask& operator=(const InsideTask&) = delete;

 private:
  bool was_inside_;
};

int default_thread_count() {
  // OpenBLAS's own variable keeps meaning what it meant when OpenBLAS ran the GEMMs' threads.
  if (const char* configured = std::getenv("OPENBLAS_NUM_THREADS")) {
    const int threads = std::atoi(configured);
    if (threads > 0) return threads;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// How long a thread that finished its tasks keeps watching for the next loop before it sleeps: some tens of
// microseconds (a pause lasts from a few dozen to about 150 cycles, depending on the CPU). A training step is a
// string of loops with short serial stretches between them; a worker that waits there awake starts the next loop
// at once, where one woken from the condition variable costs two futex calls and a scheduler round trip, which on
// the small model added up to a tenth of the step. The caller waits for the last worker the same way.
constexpr int kSpinsBeforeSleeping = 2000;

void pause_briefly() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until `ready()` or the spin budget is spent; true if ready.
template <class Ready>
bool spin_until(Ready ready) {
  for (int spin = 0; spin < kSpinsBeforeSleeping; ++spin) {
    if (ready()) return true;
    pause_briefly();
  }
  return ready();
}

class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int slot = 1; slot < threads; ++slot) workers_.emplace_back([this, slot] { serve(slot); });
  }

  ~WorkerPool() {
    {
      const std::lock_guard lock(mutex_);
      stopping_.store(true);
    }
    wake_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int thread_count() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs the loop on every thread; false, having run nothing, when another thread's loop holds the pool.
  bool try_run(std::int64_t count, const ParallelTask& task) {
    const std::unique_lock caller(caller_mutex_, std::try_to_lock);
    if (!caller.owns_lock()) return false;
    task_ = &task;
    count_ = count;
    next_index_.store(0);
    busy_workers_.store(static_cast<int>(workers_.size()));
    error_ = nullptr;
    {
      // Published under the mutex, so that a worker deciding to sleep either sees the new generation or is
      // already waiting when notify_all runs (notifying with nobody waiting makes no system call).
      const std::lock_guard lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    take_tasks(0);
    auto all_done = [this] { return busy_workers_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(all_done)) {
      std::unique_lock lock(mutex_);
      finished_.wait(lock, all_done);
    }
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  void serve(int slot) {
    std::uint64_t generation_seen = 0;
    auto has_work = [&] {
      return stopping_.load(std::memory_order_acquire) ||
             generation_.load(std::memory_order_acquire) != generation_seen;
    };
    while (true) {
      if (!spin_until(has_work)) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, has_work);
      }
      if (stopping_.load(std::memory_order_acquire)) return;
      generation_seen = generation_.load(std::memory_order_acquire);
      take_tasks(slot);
      if (busy_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        const std::lock_guard lock(mutex_);  // the caller checks under this mutex before it sleeps
        finished_.notify_one();
      }
    }
  }

  void take_tasks(int slot) {
    const InsideTask marker;
    for (std::int64_t index = next_index_.fetch_add(1); index < count_; index = next_index_.fetch_add(1)) {
      try {
        (*task_)(index, slot);
      } catch (...) {
        const std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex caller_mutex_;  // one loop at a time
  std::mutex mutex_;         // guards error_ and the sleeping on both condition variables
  std::condition_variable wake_;
  std::condition_variable finished_;
  // Written by the caller before the generation is published (release), read by workers after they see it.
  const ParallelTask* task_ = nullptr;
  std::int64_t count_ = 0;
  std::atomic<std::int64_t> next_index_{0};
  std::atomic<int> busy_workers_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  std::exception_ptr error_;
};

// Guards the pool's creation and replacement; replacing it (set_worker_threads) while a loop runs is not allowed.
std::mutex pool_mutex;
std::unique_ptr<WorkerPool>& pool_holder() {
  static std::unique_ptr<WorkerPool> pool;
  return pool;
}

WorkerPool& pool() {
  const std::lock_guard lock(pool_mutex);
  std::unique_ptr<WorkerPool>& pool = pool_holder();
  if (!pool) pool = std::make_unique<WorkerPool>(default_thread_count());
  return *pool;
}

}  // namespace

void set_worker_threads(int threads) {
  LADDER_CHECK(threads >= 0, "thread count ", threads, " must be 0 (the default) or positive");
  const int wanted = threads > 0 ? threads : default_thread_count();
  const std::lock_guard lock(pool_mutex);
  std::unique_ptr<WorkerPool>& pool = pool_holder();
  if (!pool || pool->thread_count() != wanted) {
    pool.reset();  // joins the old workers before the new ones start
    pool = std::make_unique<WorkerPool>(wanted);
  }
}

int worker_threads() { return pool().thread_count(); }

void parallel_for(std::int64_t count, const ParallelTask& task) {
  if (count <= 0) return;
  const bool pool_can_help = !inside_task && count > 1 && worker_threads() > 1;
  if (pool_can_help && pool().try_run(count, task)) return;
  const InsideTask marker;
  for (std::int64_t index = 0; index < count; ++index) task(index, 0);
}

}  // namespace ladder::ops::cpu
