#include "common/random.hpp"

#include <cmath>

namespace ladder {

std::uint64_t hash_combine(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d) {
  // Each input goes through the mixer before the next is folded in, so (1, 2) and (2, 1) differ.
  std::uint64_t h = mix64(a + 0x9E3779B97F4A7C15ULL);
  h = mix64(h ^ (b + 0x9E3779B97F4A7C15ULL));
  h = mix64(h ^ (c + 0x9E3779B97F4A7C15ULL));
  h = mix64(h ^ (d + 0x9E3779B97F4A7C15ULL));
  return h;
}

std::uint64_t Random::next_u64() {
  state_ += 0x9E3779B97F4A7C15ULL;
  return mix64(state_);
}

double Random::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

std::uint64_t Random::below(std::uint64_t bound) {
  // Rejection keeps every value equally likely; the loop almost never repeats.
  const std::uint64_t limit = ~0ULL - (~0ULL % bound);
  std::uint64_t value;
  do {
    value = next_u64();
  } while (value >= limit);
  return value % bound;
}

double Random::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // 1 - uniform() lies in (0, 1], so the logarithm is finite.
  const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));
  const double angle = 2.0 * M_PI * uniform();
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

}  // namespace ladder
