/// @file comm_metrics.hpp
/// @brief A step's communication as numbers for the step log: logical and ring bytes, per collective.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/comm/communicator.hpp"

namespace ladder {

/// {"comm_bytes": logical bytes, "comm_ring_bytes": bytes one rank sends in a ring, then "ring_bytes_<collective>"
/// for each collective that ran (all_reduce, reduce_scatter, all_gather, broadcast)}, for Experiment::record_step.
std::vector<std::pair<std::string, double>> comm_step_extras(const CommStats& stats);

}  // namespace ladder
