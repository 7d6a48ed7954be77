/// @file comm_metrics.hpp
/// @brief A step's communication as numbers for the step log: logical and ring bytes, per collective.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/comm/communicator.hpp"

namespace ladder {

/// What a step's console line shows of its communication: {"comm_bytes": logical bytes of all collectives}.
std::vector<std::pair<std::string, double>> comm_console_extras(const CommStats& stats);

/// What the metrics file records besides: {"comm_ring_bytes": bytes one rank sends in a ring}, then for each
/// collective that ran "ring_bytes_<collective>" and "logical_bytes_<collective>" (all_reduce, reduce_scatter,
/// all_gather, broadcast).
std::vector<std::pair<std::string, double>> comm_records(const CommStats& stats);

}  // namespace ladder
