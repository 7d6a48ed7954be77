/// @file random.hpp
/// @brief The project's own random numbers: identical on every platform and standard library.
///
/// std:: distributions are implementation-defined (libstdc++ and libc++ give different normals for the
/// same engine), so a seed would not give the same weights everywhere. These are fully specified here.
#pragma once

#include <cstdint>

/// Marks a function that CUDA code may call on the GPU as well (nothing in a plain C++ build).
#ifdef __CUDACC__
#define LADDER_HOST_DEVICE __host__ __device__
#else
#define LADDER_HOST_DEVICE
#endif

namespace ladder {

/// SplitMix64's finaliser: a bijective mix of 64 bits (Steele, Lea, Flood 2014). Inline and callable on the GPU, so a
/// kernel draws the same counter-based random bits as the CPU (dropout masks).
LADDER_HOST_DEVICE constexpr std::uint64_t mix64(std::uint64_t value) {
  value ^= value >> 30;
  value *= 0xBF58476D1CE4E5B9ULL;
  value ^= value >> 27;
  value *= 0x94D049BB133111EBULL;
  value ^= value >> 31;
  return value;
}

/// A well-mixed hash of a few integers, for counter-based sampling: hash_combine(seed, step, row, slot).
std::uint64_t hash_combine(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0, std::uint64_t d = 0);

/// A SplitMix64 stream: 64-bit outputs, uniform doubles and Box-Muller normals.
class Random {
 public:
  /// A stream determined entirely by `seed`.
  explicit Random(std::uint64_t seed) : state_(seed) {}
  /// Next 64 uniformly random bits.
  std::uint64_t next_u64();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  /// Uniform integer in [0, bound) (bound > 0), without modulo bias.
  std::uint64_t below(std::uint64_t bound);
  /// Standard normal by Box-Muller in double precision (callers round to float).
  double normal();

 private:
  std::uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace ladder
