#include "common/comm/communicator.hpp"

#include <thread>

#include "common/error.hpp"

namespace ladder {

std::string collective_name(Collective collective) {
  switch (collective) {
    case Collective::AllReduce: return "all-reduce";
    case Collective::ReduceScatter: return "reduce-scatter";
    case Collective::AllGather: return "all-gather";
    case Collective::Broadcast: return "broadcast";
  }
  return "unknown";
}

std::int64_t CommStats::total_logical_bytes() const {
  std::int64_t total = 0;
  for (std::int64_t bytes : logical_bytes) total += bytes;
  return total;
}

double CommStats::total_ring_bytes() const {
  double total = 0;
  for (double bytes : ring_bytes) total += bytes;
  return total;
}

void Communicator::count(Collective collective, std::int64_t bytes, double ring_fraction) {
  const auto index = static_cast<std::size_t>(collective);
  stats_.calls[index] += 1;
  stats_.logical_bytes[index] += bytes;
  stats_.ring_bytes[index] += ring_fraction * static_cast<double>(bytes);
}

void Communicator::pause_if_debugging() const {
  if (debug_delay_.count() > 0) std::this_thread::sleep_for(debug_delay_);
}

namespace {

// Reduce-scatter and all-gather both pair a whole array with one rank's shard of it.
void check_whole_and_shard(const char* what, Tensor whole, const char* whole_name, Tensor shard,
                           const char* shard_name, std::int64_t world) {
  LADDER_CHECK(whole.dtype() == shard.dtype(), what, ": ", whole_name, " is ", dtype_name(whole.dtype()), " but ",
               shard_name, " is ", dtype_name(shard.dtype()));
  LADDER_CHECK(whole.device() == shard.device(), what, ": output and input are on different devices");
  LADDER_CHECK(whole.numel() == shard.numel() * world, what, ": ", whole_name, " of ", whole.numel(),
               " elements must be world size (", world, ") times the ", shard_name, "'s ", shard.numel());
}

}  // namespace

std::unique_ptr<PendingCollective> Communicator::all_reduce_async(Tensor data, Reduction reduction) {
  pause_if_debugging();
  auto pending = start_all_reduce(data, reduction);
  const double n = world_size();
  count(Collective::AllReduce, data.bytes(), 2.0 * (n - 1) / n);  // counted once the backend accepted it
  return pending;
}

std::unique_ptr<PendingCollective> Communicator::reduce_scatter_async(Tensor output, Tensor input, Reduction reduction) {
  check_whole_and_shard("reduce-scatter", input, "input", output, "output", world_size());
  pause_if_debugging();
  auto pending = start_reduce_scatter(output, input, reduction);
  const double n = world_size();
  count(Collective::ReduceScatter, input.bytes(), (n - 1) / n);
  return pending;
}

std::unique_ptr<PendingCollective> Communicator::all_gather_async(Tensor output, Tensor input) {
  check_whole_and_shard("all-gather", output, "output", input, "input", world_size());
  pause_if_debugging();
  auto pending = start_all_gather(output, input);
  const double n = world_size();
  count(Collective::AllGather, output.bytes(), (n - 1) / n);
  return pending;
}

void Communicator::broadcast(Tensor data, int root) {
  LADDER_CHECK(root >= 0 && root < world_size(), "broadcast root ", root, " is not a rank of ", world_size());
  // A pipelined broadcast sends each byte once from every rank but the last: (N-1)/N of the data per rank.
  pause_if_debugging();
  run_broadcast(data, root);
  const double n = world_size();
  count(Collective::Broadcast, data.bytes(), (n - 1) / n);
}

}  // namespace ladder
