/// @file communicator.hpp
/// @brief Collectives between ranks behind one interface (local, MPI, NCCL), each call counted in bytes.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/tensor.hpp"

namespace ladder {

/// How a reduction combines the ranks' values.
enum class Reduction { Sum, Average };

/// The collectives, as counted in CommStats.
enum class Collective { AllReduce, ReduceScatter, AllGather, Broadcast };

/// Number of Collective kinds.
inline constexpr int kCollectiveCount = 4;

/// Display name of a collective ("all-reduce", ...).
std::string collective_name(Collective collective);

/// Bytes moved by collectives since the last reset. "Logical" bytes are the size of the data a collective is
/// about (an all-reduce of n fp32 values: 4n); "ring" bytes are what one rank sends when a ring algorithm does it
/// (all-reduce 2(N-1)/N of the logical bytes, reduce-scatter and all-gather (N-1)/N), the figure that bandwidth
/// divides.
struct CommStats {
  std::array<std::int64_t, kCollectiveCount> calls{};          ///< calls per collective
  std::array<std::int64_t, kCollectiveCount> logical_bytes{};  ///< logical bytes per collective
  std::array<double, kCollectiveCount> ring_bytes{};           ///< bytes one rank sends in a ring, per collective
  /// Logical bytes of all collectives.
  std::int64_t total_logical_bytes() const;
  /// Ring bytes of all collectives.
  double total_ring_bytes() const;
  /// Zeroes every counter (e.g. at the start of each step).
  void reset() { *this = CommStats{}; }
};

/// A collective that has started and not finished. Its buffers must not be touched before wait() returns.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  /// Blocks until the collective is complete and its output is in place.
  virtual void wait() = 0;
};

/// One rank's view of a group of ranks. Every rank must make the same calls in the same order.
/// Tensors live on the CPU, or on the GPU where the backend supports it; element types F32, F64, F16, BF16, I32.
class Communicator {
 public:
  virtual ~Communicator() = default;
  /// This process's rank, in [0, world_size()).
  virtual int rank() const = 0;
  /// Number of ranks.
  virtual int world_size() const = 0;
  /// "local", "mpi" or "nccl".
  virtual std::string backend() const = 0;
  /// This rank's place among the ranks on its machine: a rank with a GPU uses GPU local_rank() % GPUs.
  virtual int local_rank() const { return 0; }
  /// Ranks on this machine.
  virtual int local_size() const { return 1; }

  /// Starts an in-place all-reduce: every rank's `data` becomes the element-wise sum (or mean) over ranks.
  std::unique_ptr<PendingCollective> all_reduce_async(Tensor data, Reduction reduction);
  /// Starts a reduce-scatter: `input` (N·k elements on every rank) is reduced, and rank r receives elements
  /// [r·k, (r+1)·k) of the result in `output` (k elements).
  std::unique_ptr<PendingCollective> reduce_scatter_async(Tensor output, Tensor input, Reduction reduction);
  /// Starts an all-gather: every rank's `input` (k elements) lands in every rank's `output` (N·k elements),
  /// rank r's at [r·k, (r+1)·k).
  std::unique_ptr<PendingCollective> all_gather_async(Tensor output, Tensor input);
  /// In-place all-reduce, waited for.
  void all_reduce(Tensor data, Reduction reduction) { all_reduce_async(data, reduction)->wait(); }
  /// Reduce-scatter, waited for.
  void reduce_scatter(Tensor output, Tensor input, Reduction reduction) {
    reduce_scatter_async(output, input, reduction)->wait();
  }
  /// All-gather, waited for.
  void all_gather(Tensor output, Tensor input) { all_gather_async(output, input)->wait(); }
  /// Copies `data` from rank `root` to every rank.
  void broadcast(Tensor data, int root);
  /// Returns when every rank has called it.
  virtual void barrier() = 0;
  /// Ends every rank of the job at once with exit code `code`, after printing this rank and the reason
  /// (MPI_Abort / ncclCommAbort): a failing rank must never leave the others hanging in a collective.
  [[noreturn]] virtual void abort(int code, const std::string& reason) = 0;

  /// Bytes and calls counted since the last stats().reset().
  CommStats& stats() { return stats_; }
  /// Debugging aid: sleep this long before every collective starts. Results must not change; on a GPU a
  /// missing stream or event synchronisation shows up as different numbers.
  void set_debug_delay(std::chrono::milliseconds delay) { debug_delay_ = delay; }
  /// The injected delay (zero unless set).
  std::chrono::milliseconds debug_delay() const { return debug_delay_; }

 protected:
  /// Backend part of all_reduce_async, after the checks and the counting.
  virtual std::unique_ptr<PendingCollective> start_all_reduce(Tensor data, Reduction reduction) = 0;
  /// Backend part of reduce_scatter_async.
  virtual std::unique_ptr<PendingCollective> start_reduce_scatter(Tensor output, Tensor input, Reduction reduction) = 0;
  /// Backend part of all_gather_async.
  virtual std::unique_ptr<PendingCollective> start_all_gather(Tensor output, Tensor input) = 0;
  /// Backend part of broadcast.
  virtual void run_broadcast(Tensor data, int root) = 0;

 private:
  void count(Collective collective, std::int64_t bytes, double ring_fraction);
  void pause_if_debugging() const;
  CommStats stats_;
  std::chrono::milliseconds debug_delay_{0};
};

/// A collective that was complete when it started (the local backend, or a blocking fallback).
class CompletedCollective : public PendingCollective {
 public:
  /// Nothing to wait for.
  void wait() override {}
};

/// The communicator for this process: "local" (world 1), "mpi", "nccl", or "auto", which chooses as PyTorch users
/// expect: alone, local; several ranks on the CPU (`device` "cpu", or no GPU visible), MPI; several ranks with a
/// GPU each (no more ranks on this machine than GPUs visible, NCCL built in), NCCL; several ranks sharing GPUs,
/// MPI, which stages GPU buffers through host memory. `why`, when given, receives one line saying what was chosen
/// and why. Throws LadderError for an unknown name or a backend this build lacks, naming it and what the build has.
std::unique_ptr<Communicator> make_communicator(const std::string& backend, const std::string& device = "auto",
                                                std::string* why = nullptr);

/// True when this process was started by an MPI launcher (mpiexec/mpirun, srun) with more than one rank.
bool launched_with_several_ranks();

/// Ranks the launcher started on this machine, from its environment (Open MPI, MPICH's Hydra, PMIx, Slurm); the
/// whole world size when it does not say.
int launcher_local_size();

}  // namespace ladder
