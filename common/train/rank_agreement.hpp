/// @file rank_agreement.hpp
/// @brief Ranks that agree on an outcome: a step that fails on one rank fails on all, with its message, never a hang.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/comm/communicator.hpp"

namespace ladder {

/// Runs `action` on this rank, then every rank learns how it went on every rank (one all-gather). It returns only
/// where it succeeded everywhere; otherwise every rank throws: a failing rank its own error, the others a LadderError
/// with the first failing rank's message and its rank. So a rank that finds its shard corrupt, or cannot write
/// its own, ends the job with a clear message on every rank, and no rank is left waiting in a later collective.
/// With one rank it simply runs `action`.
void on_every_rank(Communicator& communicator, const std::function<void()>& action);

/// Every rank's `values` (the same count on every rank), in rank order: how each rank reports what it wrote.
std::vector<std::vector<std::uint64_t>> gather_from_every_rank(Communicator& communicator,
                                                               const std::vector<std::uint64_t>& values);

}  // namespace ladder
