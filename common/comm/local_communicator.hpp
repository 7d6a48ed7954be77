/// @file local_communicator.hpp
/// @brief The world of one rank: every collective is a copy or nothing at all.
#pragma once

#include "common/comm/communicator.hpp"

namespace ladder {

/// A communicator for a single process. Collectives keep their meaning (a sum over one rank is the value
/// itself) and their byte counts, so a stage runs unchanged, and measurably, without MPI.
class LocalCommunicator : public Communicator {
 public:
  /// Rank 0.
  int rank() const override { return 0; }
  /// One rank.
  int world_size() const override { return 1; }
  /// "local".
  std::string backend() const override { return "local"; }
  /// Nothing to wait for.
  void barrier() override {}
  /// Prints the reason and exits the process with `code`.
  [[noreturn]] void abort(int code, const std::string& reason) override;

 protected:
  /// Sum or mean over one rank: the data itself.
  std::unique_ptr<PendingCollective> start_all_reduce(Tensor data, Reduction reduction) override;
  /// Copies the whole input (it is the one shard).
  std::unique_ptr<PendingCollective> start_reduce_scatter(Tensor output, Tensor input, Reduction reduction) override;
  /// Copies the input (the only piece).
  std::unique_ptr<PendingCollective> start_all_gather(Tensor output, Tensor input) override;
  /// Nothing to send.
  void run_broadcast(Tensor data, int root) override;
};


}  // namespace ladder
