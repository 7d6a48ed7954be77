// The project RNG: SplitMix64 pinned to its published outputs, and the statistics of its distributions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/random.hpp"

namespace ladder {
namespace {

constexpr int kDraws = 100000;

// The published SplitMix64 reference outputs (Vigna's splitmix64.c): seed 0 starts with 0xE220A8397B1DCDAF,
// and seed 1234567 is the test vector other implementations (e.g. Rust's rand_xoshiro) pin.
TEST(Random, MatchesTheSplitMix64Definition) {
  Random zero(0);
  EXPECT_EQ(zero.next_u64(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(zero.next_u64(), 0x6E789E6AA1B965F4ULL);
  Random seeded(1234567);
  for (std::uint64_t expected : {6457827717110365317ULL, 3203168211198807973ULL, 9817491932198370423ULL,
                                 4593380528125082431ULL, 16408922859458223821ULL}) {
    EXPECT_EQ(seeded.next_u64(), expected);
  }
  // uniform() keeps the top 53 bits: (0xE220A8397B1DCDAF >> 11) · 2^-53.
  EXPECT_EQ(Random(0).uniform(), static_cast<double>(0xE220A8397B1DCDAFULL >> 11) * std::ldexp(1.0, -53));
}

TEST(Random, SameSeedSameSequenceAndDifferentSeedsDiffer) {
  Random a(42);
  Random b(42);
  Random c(43);
  int equal_to_other_seed = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t value = a.next_u64();
    ASSERT_EQ(value, b.next_u64()) << "draw " << i;
    if (value == c.next_u64()) ++equal_to_other_seed;
  }
  EXPECT_EQ(equal_to_other_seed, 0);
  Random d(7);
  Random e(7);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(d.normal(), e.normal()) << "normal draw " << i;
}

// Bounds are five standard errors of the estimate: a correct generator fails about once in 3 million runs.
TEST(Random, UniformHasMeanOneHalfAndVarianceOneTwelfth) {
  Random random(1);
  double sum = 0;
  double sum_of_squares = 0;
  for (int i = 0; i < kDraws; ++i) {
    const double value = random.uniform();
    ASSERT_GE(value, 0.0);
    ASSERT_LT(value, 1.0);
    sum += value;
    sum_of_squares += value * value;
  }
  const double mean = sum / kDraws;
  const double variance = sum_of_squares / kDraws - mean * mean;
  EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12 / kDraws));
  // Var of (u - 1/2)² is 1/180, so the variance estimate has standard error sqrt(1/180 / n).
  EXPECT_NEAR(variance, 1.0 / 12, 5 * std::sqrt(1.0 / 180 / kDraws));
}

TEST(Random, NormalHasMeanZeroAndVarianceOne) {
  Random random(2);
  double sum = 0;
  double sum_of_squares = 0;
  for (int i = 0; i < kDraws; ++i) {
    const double value = random.normal();
    sum += value;
    sum_of_squares += value * value;
  }
  const double mean = sum / kDraws;
  const double variance = sum_of_squares / kDraws - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5 / std::sqrt(kDraws));
  EXPECT_NEAR(variance, 1.0, 5 * std::sqrt(2.0 / kDraws));  // Var(z²) = 2
}

TEST(Random, BelowStaysInRangeAndHitsEveryValueEvenly) {
  Random random(3);
  constexpr std::uint64_t kBound = 10;
  std::vector<int> counts(kBound, 0);
  for (int i = 0; i < kDraws; ++i) {
    const std::uint64_t value = random.below(kBound);
    ASSERT_LT(value, kBound);
    ++counts[value];
  }
  // Each count is binomial(n, 1/10): standard deviation sqrt(n · 0.1 · 0.9).
  const double expected = static_cast<double>(kDraws) / kBound;
  for (std::uint64_t value = 0; value < kBound; ++value) {
    EXPECT_NEAR(counts[value], expected, 5 * std::sqrt(kDraws * 0.1 * 0.9)) << "value " << value;
  }
  for (int i = 0; i < 100; ++i) ASSERT_EQ(random.below(1), 0u);
}

TEST(Random, HashCombineDependsOnOrderAndEveryArgument) {
  EXPECT_EQ(hash_combine(1, 2, 3, 4), hash_combine(1, 2, 3, 4));
  EXPECT_NE(hash_combine(1, 2), hash_combine(2, 1));
  EXPECT_NE(hash_combine(1, 2, 3), hash_combine(1, 2, 4));
  EXPECT_NE(hash_combine(1, 2, 3, 4), hash_combine(1, 2, 3, 5));
}

}  // namespace
}  // namespace ladder
