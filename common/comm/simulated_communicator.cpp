#include "common/comm/simulated_communicator.hpp"

#include <cstdio>
#include <cstdlib>

#include "common/error.hpp"

namespace ladder {

SimulatedCommunicator::SimulatedCommunicator(int world_size) : world_size_(world_size) {
  LADDER_CHECK(world_size >= 1, "a simulated world needs at least one rank, got ", world_size);
}

void SimulatedCommunicator::abort(int code, const std::string& reason) {
  std::fprintf(stderr, "rank 0 of %d (simulated): %s\n", world_size_, reason.c_str());
  std::fflush(stderr);
  std::exit(code);
}

std::unique_ptr<PendingCollective> SimulatedCommunicator::start_all_reduce(Tensor, Reduction) {
  return std::make_unique<CompletedCollective>();
}

std::unique_ptr<PendingCollective> SimulatedCommunicator::start_reduce_scatter(Tensor, Tensor, Reduction) {
  return std::make_unique<CompletedCollective>();
}

std::unique_ptr<PendingCollective> SimulatedCommunicator::start_all_gather(Tensor, Tensor) {
  return std::make_unique<CompletedCollective>();
}

void SimulatedCommunicator::run_broadcast(Tensor, int) {}

}  // namespace ladder
