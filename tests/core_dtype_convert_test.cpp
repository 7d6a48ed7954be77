// The span conversions of dtype_convert.hpp against the element conversions of dtype.hpp (the reference, itself
// checked against GCC and the midpoint rule in core_dtype_test.cpp): same bits for every fp16 and bf16 pattern,
// and for fp32 patterns of every exponent, tie, NaN payload, infinity and signed zero. On a CPU without F16C and
// AVX2 the fast path does not exist and these tests skip, saying so.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "common/dtype.hpp"
#include "common/dtype_convert.hpp"
#include "common/error.hpp"

namespace ladder {
namespace {

constexpr std::uint32_t kPatternCount = 1u << 16;
constexpr int kReportedMismatches = 5;
// fp32 patterns are swept a block at a time, so that the sweep needs little memory.
constexpr std::uint32_t kBlock = 1u << 22;

// The bits of a float, and the float of some bits.
std::uint32_t bits_of(float value) { return std::bit_cast<std::uint32_t>(value); }
float float_from_bits(std::uint32_t bits) { return std::bit_cast<float>(bits); }

// Runs each test on the x86 path and puts back whichever path was in use before.
class FastConversion : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!conversion_path_supported(ConversionPath::X86F16cAvx2)) {
      GTEST_SKIP() << "this CPU lacks F16C or AVX2: only the portable conversions exist here";
    }
    use_conversion_path(ConversionPath::X86F16cAvx2);
  }
  void TearDown() override { use_conversion_path(path_before_); }

 private:
  ConversionPath path_before_ = conversion_path();
};

// Every 16-bit pattern through the span conversion, compared bit for bit with the element one.
template <class Storage>
void expect_every_pattern_widens_like(float (*reference)(std::uint16_t)) {
  std::vector<Storage> patterns(kPatternCount);
  for (std::uint32_t pattern = 0; pattern < kPatternCount; ++pattern) patterns[pattern].bits = static_cast<std::uint16_t>(pattern);
  std::vector<float> widened(kPatternCount);
  widen_to_float(patterns.data(), widened.data(), kPatternCount);
  int mismatches = 0;
  for (std::uint32_t pattern = 0; pattern < kPatternCount; ++pattern) {
    const std::uint32_t expected = bits_of(reference(static_cast<std::uint16_t>(pattern)));
    if (bits_of(widened[pattern]) != expected && ++mismatches <= kReportedMismatches) {
      ADD_FAILURE() << "0x" << std::hex << pattern << " widens to 0x" << bits_of(widened[pattern])
                    << ", the reference to 0x" << expected;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(FastConversion, EveryHalfPatternWidensToTheReferenceBits) {
  expect_every_pattern_widens_like<Half>(half_bits_to_float);
}

TEST_F(FastConversion, EveryBFloat16PatternWidensToTheReferenceBits) {
  expect_every_pattern_widens_like<BFloat16>(bfloat16_bits_to_float);
}

// The fp16 widening decides once per group of sixteen whether any value needs its NaN repair. Consecutive patterns
// fill whole groups with infinities and NaNs; here each pattern sits alone among ordinary values (1.0), at every
// place of a group, so a group with a single signalling NaN in any lane must still be repaired.
template <class Storage>
void expect_every_pattern_among_ordinary_values_widens_like(float (*reference)(std::uint16_t)) {
  constexpr int kGroup = 16;
  constexpr std::uint16_t kOne = std::is_same_v<Storage, Half> ? 0x3C00 : 0x3F80;
  for (int place = 0; place < kGroup; ++place) {
    std::vector<Storage> values(static_cast<std::size_t>(kPatternCount) * kGroup);
    for (Storage& value : values) value.bits = kOne;
    for (std::uint32_t pattern = 0; pattern < kPatternCount; ++pattern) {
      values[pattern * kGroup + place].bits = static_cast<std::uint16_t>(pattern);
    }
    std::vector<float> widened(values.size());
    widen_to_float(values.data(), widened.data(), static_cast<std::int64_t>(values.size()));
    int mismatches = 0;
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::uint32_t expected = bits_of(reference(values[i].bits));
      if (bits_of(widened[i]) != expected && ++mismatches <= kReportedMismatches) {
        ADD_FAILURE() << "0x" << std::hex << values[i].bits << " at place " << std::dec << place
                      << " of its group widens to 0x" << std::hex << bits_of(widened[i]) << ", the reference to 0x"
                      << expected;
      }
    }
    EXPECT_EQ(mismatches, 0) << "place " << place;
  }
}

TEST_F(FastConversion, EveryHalfPatternAmongOrdinaryValuesWidensToTheReferenceBits) {
  expect_every_pattern_among_ordinary_values_widens_like<Half>(half_bits_to_float);
}

TEST_F(FastConversion, EveryBFloat16PatternAmongOrdinaryValuesWidensToTheReferenceBits) {
  expect_every_pattern_among_ordinary_values_widens_like<BFloat16>(bfloat16_bits_to_float);
}

// Which fp32 patterns are rounded and compared. All 2^32 take half a minute with the reference on two cores, so
// the sweep keeps what decides the rounding: for every sign and exponent, every value of the low 16 mantissa
// bits (bf16 cuts at bit 16, fp16 normals at 13: every tie, near-tie and sticky bit) under five choices of the
// top seven (zero, the last bf16 bit odd, all ones so the rounding carries into the exponent, ...); and every
// mantissa of the exponents where an fp16 subnormal cuts above bit 16. Exponent 255 makes it every infinity and
// 2^21 NaN payloads, exponent 0 both zeros and the fp32 subnormals.
constexpr std::uint32_t kTopChoices[] = {0x00, 0x01, 0x3F, 0x40, 0x7F};
constexpr std::uint32_t kFirstFullExponent = 102, kLastFullExponent = 109;  // fp16 subnormals cut at bits 24..17

template <class Visit>
void for_each_checked_float_pattern(Visit visit) {
  for (std::uint32_t sign = 0; sign < 2; ++sign) {
    for (std::uint32_t exponent = 0; exponent < 256; ++exponent) {
      const std::uint32_t sign_and_exponent = sign << 31 | exponent << 23;
      if (exponent >= kFirstFullExponent && exponent <= kLastFullExponent) {
        for (std::uint32_t mantissa = 0; mantissa < (1u << 23); ++mantissa) visit(sign_and_exponent | mantissa);
        continue;
      }
      for (const std::uint32_t top : kTopChoices) {
        for (std::uint32_t low = 0; low < (1u << 16); ++low) visit(sign_and_exponent | top << 16 | low);
      }
    }
  }
}

// The checked patterns through the span conversion, a block at a time, compared bit for bit with the reference.
template <class Storage>
void expect_floats_round_like(std::uint16_t (*reference)(float)) {
  std::vector<float> inputs;
  inputs.reserve(kBlock);
  std::vector<Storage> rounded(kBlock);
  int mismatches = 0;
  std::uint64_t checked = 0;
  auto compare_block = [&] {
    round_from_float(inputs.data(), rounded.data(), static_cast<std::int64_t>(inputs.size()));
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const std::uint16_t expected = reference(inputs[i]);
      if (rounded[i].bits != expected && ++mismatches <= kReportedMismatches) {
        ADD_FAILURE() << "float 0x" << std::hex << bits_of(inputs[i]) << " rounds to 0x" << rounded[i].bits
                      << ", the reference to 0x" << expected;
      }
    }
    checked += inputs.size();
    inputs.clear();
  };
  for_each_checked_float_pattern([&](std::uint32_t bits) {
    inputs.push_back(float_from_bits(bits));
    if (inputs.size() == kBlock) compare_block();
  });
  compare_block();
  EXPECT_EQ(mismatches, 0);
  // The sweep did run in full: 2 signs · (248 exponents · 5 tops · 2^16 + 8 exponents · 2^23).
  EXPECT_EQ(checked, std::uint64_t{2} * (248 * 5 * (1u << 16) + 8 * (std::uint64_t{1} << 23)));
}

TEST_F(FastConversion, FloatsOfEveryExponentTieAndNaNPayloadRoundToTheReferenceHalf) {
  expect_floats_round_like<Half>(float_to_half_bits);
}

TEST_F(FastConversion, FloatsOfEveryExponentTieAndNaNPayloadRoundToTheReferenceBFloat16) {
  expect_floats_round_like<BFloat16>(float_to_bfloat16_bits);
}

// The kernels work eight values at a time: spans of every length up to 40, starting at every offset of a
// group of eight, must convert exactly their own elements and leave their neighbours alone.
template <class Storage>
void expect_spans_convert_exactly_their_elements() {
  constexpr int kLongest = 40, kOffsets = 8, kSentinel = 0x5A5A;
  for (int offset = 0; offset < kOffsets; ++offset) {
    for (int length = 0; length <= kLongest; ++length) {
      std::vector<float> inputs(kOffsets + kLongest + kOffsets);
      for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = 0.37f * static_cast<float>(i) - 3.3f;
      std::vector<Storage> rounded(inputs.size());
      for (Storage& value : rounded) value.bits = kSentinel;
      round_from_float(inputs.data() + offset, rounded.data() + offset, length);
      std::vector<float> widened(inputs.size(), -1.0f);
      widen_to_float(rounded.data() + offset, widened.data() + offset, length);
      for (int i = 0; i < static_cast<int>(inputs.size()); ++i) {
        const bool inside = i >= offset && i < offset + length;
        const Storage expected = inside ? Storage(inputs[static_cast<std::size_t>(i)]) : Storage{};
        const std::uint16_t expected_bits = inside ? expected.bits : static_cast<std::uint16_t>(kSentinel);
        ASSERT_EQ(rounded[static_cast<std::size_t>(i)].bits, expected_bits)
            << "offset " << offset << ", length " << length << ", element " << i;
        const float expected_widened = inside ? static_cast<float>(expected) : -1.0f;
        ASSERT_EQ(bits_of(widened[static_cast<std::size_t>(i)]), bits_of(expected_widened))
            << "offset " << offset << ", length " << length << ", element " << i;
      }
    }
  }
}

TEST_F(FastConversion, HalfSpansOfAnyLengthAndOffsetConvertOnlyTheirElements) {
  expect_spans_convert_exactly_their_elements<Half>();
}

TEST_F(FastConversion, BFloat16SpansOfAnyLengthAndOffsetConvertOnlyTheirElements) {
  expect_spans_convert_exactly_their_elements<BFloat16>();
}

TEST(ConversionPath, ThePortablePathCanBeChosenAnywhereAndAnUnsupportedOneIsRefused) {
  const ConversionPath before = conversion_path();
  use_conversion_path(ConversionPath::Portable);
  EXPECT_EQ(conversion_path(), ConversionPath::Portable);
  const float value = 0.1f;
  Half rounded;
  round_from_float(&value, &rounded, 1);
  EXPECT_EQ(rounded.bits, float_to_half_bits(value));
  if (!conversion_path_supported(ConversionPath::X86F16cAvx2)) {
    EXPECT_THROW(use_conversion_path(ConversionPath::X86F16cAvx2), LadderError);
  }
  use_conversion_path(before);
}

}  // namespace
}  // namespace ladder
