// The host fp16 and bf16 conversions, checked over every 16-bit pattern against independent answers:
// GCC's own _Float16 conversions for fp16, and the round-to-nearest-even midpoint rule written out for both.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "common/dtype.hpp"
#include "common/random.hpp"

namespace ladder {
namespace {

constexpr std::uint32_t kPatternCount = 1u << 16;
constexpr int kReportedMismatches = 5;  // enough to diagnose, without flooding the log

std::uint32_t bits_of(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float float_from_bits(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

bool is_half_nan(std::uint16_t bits) { return (bits & 0x7C00u) == 0x7C00u && (bits & 0x03FFu) != 0; }
bool is_half_inf_or_nan(std::uint16_t bits) { return (bits & 0x7C00u) == 0x7C00u; }
bool is_bfloat16_nan(std::uint16_t bits) { return (bits & 0x7F80u) == 0x7F80u && (bits & 0x007Fu) != 0; }

// GCC's _Float16 (libgcc's soft-float conversion, or F16C where enabled): the independent fp16 reference.
std::uint16_t gcc_half_bits(float value) {
  volatile float input = value;  // keep the conversion at run time
  const _Float16 half = static_cast<_Float16>(input);
  std::uint16_t bits;
  std::memcpy(&bits, &half, sizeof bits);
  return bits;
}

float gcc_half_value(std::uint16_t bits) {
  _Float16 half;
  std::memcpy(&half, &bits, sizeof half);
  return static_cast<float>(half);
}

float toward_zero(float value) { return std::nextafter(value, 0.0f); }
float away_from_zero(float value) {
  return std::nextafter(value, std::copysign(std::numeric_limits<float>::infinity(), value));
}

TEST(HalfConversion, EveryPatternWidensToGccsFloat) {
  int mismatches = 0;
  for (std::uint32_t pattern = 0; pattern < kPatternCount; ++pattern) {
    const auto bits = static_cast<std::uint16_t>(pattern);
    const float ours = half_bits_to_float(bits);
    const float reference = gcc_half_value(bits);
    const bool agree = is_half_nan(bits) ? std::isnan(ours) : bits_of(ours) == bits_of(reference);
    if (!agree && ++mismatches <= kReportedMismatches) {
      ADD_FAILURE() << "half 0x" << std::hex << pattern << " widens to " << ours << ", GCC says " << reference;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(HalfConversion, EveryPatternRoundTripsThroughFloat) {
  int mismatches = 0;
  for (std::uint32_t pattern = 0; pattern < kPatternCount; ++pattern) {
    const auto bits = static_cast<std::uint16_t>(pattern);
    const std::uint16_t back = float_to_half_bits(half_bits_to_float(bits));
    const bool agree = is_half_nan(bits) ? is_half_nan(back) : back == bits;
    if (!agree && ++mismatches <= kReportedMismatches) {
      ADD_FAILURE() << "half 0x" << std::hex << pattern << " came back as 0x" << back;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// For every finite pattern: the value itself, the midpoint to the next pattern away from zero, and one float
// ulp either side of that midpoint. GCC must agree; independently, the tie must land on the even pattern and
// its neighbours on the nearer one.
TEST(HalfConversion, RoundsValuesAndMidpointsLikeGccAndTiesToEven) {
  int mismatches = 0;
  auto expect_bits = [&](float input, std::uint16_t expected, const char* what) {
    const std::uint16_t ours = float_to_half_bits(input);
    if (ours != expected && ++mismatches <= kReportedMismatches) {
      ADD_FAILURE() << what << ": " << input << " rounds to 0x" << std::hex << ours << ", expected 0x" << expected;
    }
  };
  for (std::uint32_t pattern = 0; pattern < kPatternCount; ++pattern) {
    const auto bits = static_cast<std::uint16_t>(pattern);
    if (is_half_inf_or_nan(bits)) continue;
    const float value = half_bits_to_float(bits);
    const auto next = static_cast<std::uint16_t>(bits + 1);  // next magnitude, same sign
    // Past the largest finite half (65504) the next step would be 2^16: that is where rounding to inf starts.
    const float next_value = is_half_inf_or_nan(next) ? std::copysign(65536.0f, value) : half_bits_to_float(next);
    const float midpoint = (value + next_value) / 2;  // exact: halves have 11 significant bits, floats 24
    const float below = toward_zero(midpoint);
    const float above = away_from_zero(midpoint);
    for (float input : {value, midpoint, below, above}) expect_bits(input, gcc_half_bits(input), "GCC");
    expect_bits(value, bits, "exact value");
    expect_bits(midpoint, (bits & 1u) == 0 ? bits : next, "tie to even");
    expect_bits(below, bits, "just below the midpoint");
    expect_bits(above, next, "just above the midpoint");
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(HalfConversion, RandomFloatsRoundLikeGcc) {
  Random random(2024);
  int mismatches = 0;
  for (int i = 0; i < 200000; ++i) {
    const float input = float_from_bits(static_cast<std::uint32_t>(random.next_u64()));
    const std::uint16_t ours = float_to_half_bits(input);
    const bool agree = std::isnan(input) ? is_half_nan(ours) : ours == gcc_half_bits(input);
    if (!agree && ++mismatches <= kReportedMismatches) {
      ADD_FAILURE() << "float 0x" << std::hex << bits_of(input) << " rounds to 0x" << ours << ", GCC says 0x"
                    << gcc_half_bits(input);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(HalfConversion, OverflowSubnormalsZerosAndNaN) {
  // Overflow: 65520 is the midpoint between 65504 and 2^16; the tie goes to the even pattern, which is inf.
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7BFFu);
  EXPECT_EQ(float_to_half_bits(toward_zero(65520.0f)), 0x7BFFu);
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7C00u);
  EXPECT_EQ(float_to_half_bits(-65520.0f), 0xFC00u);
  EXPECT_EQ(float_to_half_bits(1e10f), 0x7C00u);
  EXPECT_EQ(float_to_half_bits(std::numeric_limits<float>::infinity()), 0x7C00u);
  EXPECT_EQ(float_to_half_bits(-std::numeric_limits<float>::infinity()), 0xFC00u);
  // Subnormals are multiples of 2^-24.
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -24)), 0x0001u);
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -25)), 0x0000u);  // tie between 0 and 1: even is 0
  EXPECT_EQ(float_to_half_bits(away_from_zero(std::ldexp(1.0f, -25))), 0x0001u);
  EXPECT_EQ(float_to_half_bits(std::ldexp(3.0f, -25)), 0x0002u);  // tie between 1 and 2: even is 2
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -14)), 0x0400u);  // smallest normal
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -24)), 0x03FFu);
  EXPECT_EQ(half_bits_to_float(0x0001u), std::ldexp(1.0f, -24));
  EXPECT_EQ(float_to_half_bits(1e-30f), 0x0000u);
  EXPECT_EQ(float_to_half_bits(-1e-30f), 0x8000u);
  // Signed zeros keep their sign both ways.
  EXPECT_EQ(float_to_half_bits(0.0f), 0x0000u);
  EXPECT_EQ(float_to_half_bits(-0.0f), 0x8000u);
  EXPECT_TRUE(std::signbit(half_bits_to_float(0x8000u)));
  EXPECT_EQ(half_bits_to_float(0x8000u), 0.0f);
  // NaN stays NaN, even a float NaN whose payload sits only in bits that half drops.
  EXPECT_TRUE(is_half_nan(float_to_half_bits(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(is_half_nan(float_to_half_bits(float_from_bits(0x7F800001u))));
  EXPECT_TRUE(is_half_nan(float_to_half_bits(float_from_bits(0xFF800001u))));
  // The Half type and store/load go through the same conversions.
  EXPECT_EQ(Half(1.0f).bits, 0x3C00u);
  EXPECT_EQ(static_cast<float>(store<Half>(0.1f)), half_bits_to_float(float_to_half_bits(0.1f)));
  EXPECT_EQ(load<Half>(Half(-2.5f)), -2.5f);
}

TEST(BFloat16Conversion, EveryPatternIsTheTopHalfOfAFloatAndRoundTrips) {
  int mismatches = 0;
  for (std::uint32_t pattern = 0; pattern < kPatternCount; ++pattern) {
    const auto bits = static_cast<std::uint16_t>(pattern);
    const float value = bfloat16_bits_to_float(bits);
    const std::uint16_t back = float_to_bfloat16_bits(value);
    const bool widens = bits_of(value) == pattern << 16;
    const bool round_trips = is_bfloat16_nan(bits) ? is_bfloat16_nan(back) && (back & 0x0040u) : back == bits;
    if (!(widens && round_trips) && ++mismatches <= kReportedMismatches) {
      ADD_FAILURE() << "bf16 0x" << std::hex << pattern << " widens to 0x" << bits_of(value) << ", comes back as 0x"
                    << back;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// The midpoint rule, for every finite pattern: the exact midpoint to the next pattern away from zero rounds
// to the even one of the two, and one float ulp below / above it rounds down / up.
TEST(BFloat16Conversion, MidpointsTieToEvenAndTheirNeighboursRoundToTheNearer) {
  int mismatches = 0;
  auto expect_bits = [&](float input, std::uint16_t expected, const char* what) {
    const std::uint16_t ours = float_to_bfloat16_bits(input);
    if (ours != expected && ++mismatches <= kReportedMismatches) {
      ADD_FAILURE() << what << ": float 0x" << std::hex << bits_of(input) << " rounds to 0x" << ours << ", expected 0x"
                    << expected;
    }
  };
  for (std::uint32_t pattern = 0; pattern < kPatternCount; ++pattern) {
    const auto bits = static_cast<std::uint16_t>(pattern);
    if ((bits & 0x7F80u) == 0x7F80u) continue;  // inf and NaN have no next value
    const auto next = static_cast<std::uint16_t>(bits + 1);
    const double value = bfloat16_bits_to_float(bits);
    // After the largest finite bf16 comes inf; the step it stands for is 2^128, which a double holds.
    const double next_value =
        (next & 0x7F80u) == 0x7F80u ? std::copysign(std::ldexp(1.0, 128), value) : bfloat16_bits_to_float(next);
    const auto midpoint = static_cast<float>((value + next_value) / 2);  // exact in float (and in double)
    ASSERT_EQ(static_cast<double>(midpoint), (value + next_value) / 2) << "pattern " << pattern;
    expect_bits(static_cast<float>(value), bits, "exact value");
    expect_bits(midpoint, (bits & 1u) == 0 ? bits : next, "tie to even");
    expect_bits(toward_zero(midpoint), bits, "just below the midpoint");
    expect_bits(away_from_zero(midpoint), next, "just above the midpoint");
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(BFloat16Conversion, NaNStaysAQuietNaNAndOverflowGoesToInf) {
  for (std::uint32_t nan_bits : {0x7F800001u, 0x7FC00000u, 0xFF800001u, 0x7FFFFFFFu, 0x7F810000u, 0xFFFF0001u}) {
    const std::uint16_t bits = float_to_bfloat16_bits(float_from_bits(nan_bits));
    EXPECT_TRUE(is_bfloat16_nan(bits)) << std::hex << nan_bits;
    EXPECT_NE(bits & 0x0040u, 0u) << "quiet bit of " << std::hex << nan_bits;
    EXPECT_EQ(bits & 0x8000u, (nan_bits >> 16) & 0x8000u) << "sign of " << std::hex << nan_bits;
  }
  EXPECT_EQ(float_to_bfloat16_bits(std::numeric_limits<float>::max()), 0x7F80u);
  EXPECT_EQ(float_to_bfloat16_bits(-std::numeric_limits<float>::infinity()), 0xFF80u);
  EXPECT_EQ(float_to_bfloat16_bits(-0.0f), 0x8000u);
  EXPECT_EQ(BFloat16(1.0f).bits, 0x3F80u);
  EXPECT_EQ(load<BFloat16>(store<BFloat16>(3.0f)), 3.0f);
}

}  // namespace
}  // namespace ladder
