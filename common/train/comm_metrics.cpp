#include "common/train/comm_metrics.hpp"

namespace ladder {

std::vector<std::pair<std::string, double>> comm_console_extras(const CommStats& stats) {
  return {{"comm_bytes", static_cast<double>(stats.total_logical_bytes())}};
}

std::vector<std::pair<std::string, double>> comm_records(const CommStats& stats) {
  std::vector<std::pair<std::string, double>> records = {{"comm_ring_bytes", stats.total_ring_bytes()}};
  for (int index = 0; index < kCollectiveCount; ++index) {
    if (stats.calls[index] == 0) continue;
    std::string name = collective_name(static_cast<Collective>(index));  // "all-reduce" -> "all_reduce"
    for (char& letter : name) letter = letter == '-' ? '_' : letter;
    records.emplace_back("ring_bytes_" + name, stats.ring_bytes[index]);
    records.emplace_back("logical_bytes_" + name, static_cast<double>(stats.logical_bytes[index]));
  }
  return records;
}

}  // namespace ladder
