// The x86 span conversions: each function is compiled for F16C and AVX2 through a target attribute, so the
// rest of the program stays baseline x86-64 and only calls them after f16c_avx2_available() said yes.
// Every kernel gives exactly the bits of dtype.cpp's reference conversions; tests/core_dtype_convert_test.cpp
// compares them over every 16-bit pattern and a wide set of fp32 ones.
#include "common/dtype_convert_x86.hpp"

#ifdef LADDER_X86_CONVERSIONS

#include <immintrin.h>

#include <cstring>

#define LADDER_F16C_AVX2 __attribute__((target("avx2,f16c")))

namespace ladder::x86 {

namespace {

constexpr int kLanes = 8;  // fp32 values in one 256-bit register

// Runs an eight-value kernel over a span; the last few values go through a zero-padded copy, so no kernel
// reads or writes past the span.
template <class Source, class Destination, void (*kernel)(const Source*, Destination*)>
LADDER_F16C_AVX2 void convert_in_groups_of_eight(const Source* source, Destination* destination, std::int64_t count) {
  std::int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) kernel(source + i, destination + i);
  if (i == count) return;
  Source source_tail[kLanes] = {};
  Destination destination_tail[kLanes];
  const auto remaining = static_cast<std::size_t>(count - i);
  std::memcpy(source_tail, source + i, remaining * sizeof(Source));
  kernel(source_tail, destination_tail);
  std::memcpy(destination + i, destination_tail, remaining * sizeof(Destination));
}

LADDER_F16C_AVX2 void widen_eight_halves(const std::uint16_t* source, float* destination) {
  const __m128i half_bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(source));
  const __m256 widened = _mm256_cvtph_ps(half_bits);
  // vcvtph2ps quiets a signalling NaN (it sets fp32 bit 22, the top payload bit); the reference keeps the
  // payload as it was, so that bit is cleared again where the input was a signalling NaN: exponent all ones,
  // quiet bit (0x0200) clear, some other payload bit set.
  const __m256i bits = _mm256_cvtepu16_epi32(half_bits);
  const __m256i exponent_and_quiet_bit = _mm256_and_si256(bits, _mm256_set1_epi32(0x7E00));
  const __m256i looks_signalling = _mm256_cmpeq_epi32(exponent_and_quiet_bit, _mm256_set1_epi32(0x7C00));
  const __m256i payload = _mm256_and_si256(bits, _mm256_set1_epi32(0x01FF));
  const __m256i no_payload = _mm256_cmpeq_epi32(payload, _mm256_setzero_si256());
  const __m256i signalling = _mm256_andnot_si256(no_payload, looks_signalling);
  const __m256i quiet_bit = _mm256_and_si256(signalling, _mm256_set1_epi32(0x00400000));
  const __m256i result = _mm256_xor_si256(_mm256_castps_si256(widened), quiet_bit);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(destination), result);
}

LADDER_F16C_AVX2 void round_eight_to_half(const float* source, std::uint16_t* destination) {
  // The rounding mode is in the instruction (nearest even), not taken from MXCSR. Its NaN rule is the
  // reference's: quiet, sign kept, top ten payload bits kept.
  const __m128i rounded = _mm256_cvtps_ph(_mm256_loadu_ps(source), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(destination), rounded);
}

LADDER_F16C_AVX2 void widen_eight_bfloat16s(const std::uint16_t* source, float* destination) {
  const __m256i bits = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(source)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(destination), _mm256_slli_epi32(bits, 16));
}

// The reference's arithmetic, eight lanes wide: add 0x7FFF plus the lowest kept bit, keep the top 16 bits;
// NaN becomes its top 16 bits with the quiet bit set. (AVX-512 BF16's vcvtneps2bf16 would round in one
// instruction, but it flushes fp32 subnormals to zero, where the reference rounds them: not the same bits.)
LADDER_F16C_AVX2 void round_eight_to_bfloat16(const float* source, std::uint16_t* destination) {
  const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(source));
  const __m256i top_half = _mm256_srli_epi32(bits, 16);
  const __m256i lowest_kept_bit = _mm256_and_si256(top_half, _mm256_set1_epi32(1));
  const __m256i rounding = _mm256_add_epi32(lowest_kept_bit, _mm256_set1_epi32(0x7FFF));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, rounding), 16);
  const __m256i quiet_nan = _mm256_or_si256(top_half, _mm256_set1_epi32(0x0040));
  // A NaN's magnitude bits exceed infinity's; as signed integers both are positive, so a signed compare works.
  const __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF));
  const __m256i is_nan = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7F800000));
  const __m256i result = _mm256_blendv_epi8(rounded, quiet_nan, is_nan);
  // Narrow the eight 32-bit results (each below 2^16, so no saturation) to 16 bits: packus works within each
  // 128-bit half, then the two useful 64-bit pieces are brought together.
  const __m256i packed = _mm256_packus_epi32(result, result);
  const __m256i ordered = _mm256_permute4x64_epi64(packed, 0b00001000);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(destination), _mm256_castsi256_si128(ordered));
}

}  // namespace

bool f16c_avx2_available() {
  static const bool available = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return available;
}

// Sixteen halves at a time. Only a half whose exponent is all ones (an infinity or a NaN) can need
// widen_eight_halves' NaN repair, and a gradient or weight almost never is one, so one test per sixteen decides:
// where none is, vcvtph2ps alone gives the reference's bits, and the eleven instructions of the repair are
// skipped. That makes widening in cache about 1.4 times as fast; from memory the loads still set the pace.
LADDER_F16C_AVX2 void widen_half_f16c(const std::uint16_t* source, float* destination, std::int64_t count) {
  constexpr std::int64_t kGroup = 2 * kLanes;
  const __m256i exponent = _mm256_set1_epi16(0x7C00);
  std::int64_t i = 0;
  for (; i + kGroup <= count; i += kGroup) {
    const __m256i halves = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(source + i));
    const __m256i special = _mm256_cmpeq_epi16(_mm256_and_si256(halves, exponent), exponent);
    if (_mm256_testz_si256(special, special)) {
      _mm256_storeu_ps(destination + i, _mm256_cvtph_ps(_mm256_castsi256_si128(halves)));
      _mm256_storeu_ps(destination + i + kLanes, _mm256_cvtph_ps(_mm256_extracti128_si256(halves, 1)));
    } else {
      widen_eight_halves(source + i, destination + i);
      widen_eight_halves(source + i + kLanes, destination + i + kLanes);
    }
  }
  convert_in_groups_of_eight<std::uint16_t, float, widen_eight_halves>(source + i, destination + i, count - i);
}

void round_half_f16c(const float* source, std::uint16_t* destination, std::int64_t count) {
  convert_in_groups_of_eight<float, std::uint16_t, round_eight_to_half>(source, destination, count);
}

void widen_bfloat16_avx2(const std::uint16_t* source, float* destination, std::int64_t count) {
  convert_in_groups_of_eight<std::uint16_t, float, widen_eight_bfloat16s>(source, destination, count);
}

void round_bfloat16_avx2(const float* source, std::uint16_t* destination, std::int64_t count) {
  convert_in_groups_of_eight<float, std::uint16_t, round_eight_to_bfloat16>(source, destination, count);
}

}  // namespace ladder::x86

#else  // not x86: no fast path; dtype_convert.cpp never calls the kernels, which are not compiled here.

namespace ladder::x86 {
bool f16c_avx2_available() { return false; }
}  // namespace ladder::x86

#endif
