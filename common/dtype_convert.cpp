// Span conversions: the path is chosen once from what the CPU offers; a test may switch it to compare.
#include "common/dtype_convert.hpp"

#include <atomic>

#include "common/dtype_convert_x86.hpp"
#include "common/error.hpp"

namespace ladder {

// Half and BFloat16 are their 16 bits and nothing else, so a span of them is a span of std::uint16_t.
static_assert(sizeof(Half) == sizeof(std::uint16_t) && sizeof(BFloat16) == sizeof(std::uint16_t));

namespace {

ConversionPath fastest_supported_path() {
  return x86::f16c_avx2_available() ? ConversionPath::X86F16cAvx2 : ConversionPath::Portable;
}

// Read by every conversion, possibly from several threads at once; written by tests between conversions.
std::atomic<ConversionPath>& active_path() {
  static std::atomic<ConversionPath> path{fastest_supported_path()};
  return path;
}

#ifdef LADDER_X86_CONVERSIONS
const std::uint16_t* bits_of(const Half* values) { return reinterpret_cast<const std::uint16_t*>(values); }
const std::uint16_t* bits_of(const BFloat16* values) { return reinterpret_cast<const std::uint16_t*>(values); }
std::uint16_t* bits_of(Half* values) { return reinterpret_cast<std::uint16_t*>(values); }
std::uint16_t* bits_of(BFloat16* values) { return reinterpret_cast<std::uint16_t*>(values); }

bool fast_path_active() { return active_path().load(std::memory_order_relaxed) == ConversionPath::X86F16cAvx2; }
#endif

}  // namespace

std::string conversion_path_name(ConversionPath path) {
  switch (path) {
    case ConversionPath::Portable: return "portable";
    case ConversionPath::X86F16cAvx2: return "x86 f16c+avx2";
  }
  throw LadderError("unknown conversion path");
}

bool conversion_path_supported(ConversionPath path) {
  return path == ConversionPath::Portable || x86::f16c_avx2_available();
}

ConversionPath conversion_path() { return active_path().load(std::memory_order_relaxed); }

void use_conversion_path(ConversionPath path) {
  LADDER_CHECK(conversion_path_supported(path), "conversion path ", conversion_path_name(path),
               " needs instructions this CPU does not have");
  active_path().store(path, std::memory_order_relaxed);
}

void widen_to_float(const Half* source, float* destination, std::int64_t count) {
#ifdef LADDER_X86_CONVERSIONS
  if (fast_path_active()) return x86::widen_half_f16c(bits_of(source), destination, count);
#endif
  for (std::int64_t i = 0; i < count; ++i) destination[i] = half_bits_to_float(source[i].bits);
}

void widen_to_float(const BFloat16* source, float* destination, std::int64_t count) {
#ifdef LADDER_X86_CONVERSIONS
  if (fast_path_active()) return x86::widen_bfloat16_avx2(bits_of(source), destination, count);
#endif
  for (std::int64_t i = 0; i < count; ++i) destination[i] = bfloat16_bits_to_float(source[i].bits);
}

void round_from_float(const float* source, Half* destination, std::int64_t count) {
#ifdef LADDER_X86_CONVERSIONS
  if (fast_path_active()) return x86::round_half_f16c(source, bits_of(destination), count);
#endif
  for (std::int64_t i = 0; i < count; ++i) destination[i].bits = float_to_half_bits(source[i]);
}

void round_from_float(const float* source, BFloat16* destination, std::int64_t count) {
#ifdef LADDER_X86_CONVERSIONS
  if (fast_path_active()) return x86::round_bfloat16_avx2(source, bits_of(destination), count);
#endif
  for (std::int64_t i = 0; i < count; ++i) destination[i].bits = float_to_bfloat16_bits(source[i]);
}

}  // namespace ladder
