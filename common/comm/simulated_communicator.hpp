/// @file simulated_communicator.hpp
/// @brief Rank 0 of a world that exists only on paper, for plans on the meta device.
#pragma once

#include "common/comm/communicator.hpp"

namespace ladder {

/// Rank 0 of N ranks that are not there. Every collective is checked and counted as N ranks would run it (so the
/// bytes a rank sends are known), and nothing moves: what the other ranks would have contributed is simply absent.
/// With the meta device, whose buffers hold no values, it lets one process show what each of N ranks would hold
/// and send (--device meta --simulate-ranks N).
class SimulatedCommunicator : public Communicator {
 public:
  /// Rank 0 of `world_size` (>= 1) simulated ranks.
  explicit SimulatedCommunicator(int world_size);
  /// Rank 0.
  int rank() const override { return 0; }
  /// The simulated world size.
  int world_size() const override { return world_size_; }
  /// "simulated".
  std::string backend() const override { return "simulated"; }
  /// Nobody to wait for.
  void barrier() override {}
  /// Prints the reason and exits the process with `code`.
  [[noreturn]] void abort(int code, const std::string& reason) override;

 protected:
  /// Counted, not run.
  std::unique_ptr<PendingCollective> start_all_reduce(Tensor data, Reduction reduction) override;
  /// Counted, not run.
  std::unique_ptr<PendingCollective> start_reduce_scatter(Tensor output, Tensor input, Reduction reduction) override;
  /// Counted, not run.
  std::unique_ptr<PendingCollective> start_all_gather(Tensor output, Tensor input) override;
  /// Nothing to send.
  void run_broadcast(Tensor data, int root) override;

 private:
  int world_size_;
};

}  // namespace ladder
