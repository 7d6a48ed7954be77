/// @file dropout_mask.hpp
/// @brief Which elements dropout keeps: a pure function of a seed and the element's index, the same on both devices.
#pragma once

#include <cstdint>

#include "common/random.hpp"

namespace ladder::ops {

/// The mask threshold of drop probability p in [0, 1): an element is kept when its 32 random bits are >= p·2^32.
inline std::uint64_t dropout_threshold(double probability) {
  return static_cast<std::uint64_t>(probability * 4294967296.0);
}

/// Whether dropout keeps element `index` under `seed`. Counter-based (no state, no stored mask): backward regenerates
/// the forward's mask from the same seed, and a GPU thread computes its element's bit as the CPU loop does.
LADDER_HOST_DEVICE inline bool dropout_keeps(std::uint64_t seed, std::int64_t index, std::uint64_t threshold) {
  return (mix64(seed ^ mix64(static_cast<std::uint64_t>(index))) >> 32) >= threshold;
}

}  // namespace ladder::ops
