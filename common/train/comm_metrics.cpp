#include "common/train/comm_metrics.hpp"

namespace ladder {

std::vector<std::pair<std::string, double>> comm_step_extras(const CommStats& stats) {
  std::vector<std::pair<std::string, double>> extras = {
      {"comm_bytes", static_cast<double>(stats.total_logical_bytes())}, {"comm_ring_bytes", stats.total_ring_bytes()}};
  for (int index = 0; index < kCollectiveCount; ++index) {
    if (stats.calls[index] == 0) continue;
    std::string name = collective_name(static_cast<Collective>(index));  // "all-reduce" -> "ring_bytes_all_reduce"
    for (char& letter : name) letter = letter == '-' ? '_' : letter;
    extras.emplace_back("ring_bytes_" + name, stats.ring_bytes[index]);
  }
  return extras;
}

}  // namespace ladder
