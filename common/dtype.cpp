#include "common/dtype.hpp"

#include <cstring>

#include "common/error.hpp"

namespace ladder {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::F64: return 8;
    case DType::I32: return 4;
  }
  throw LadderError("unknown dtype");
}

std::string dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
  }
  throw LadderError("unknown dtype");
}

namespace {

std::uint32_t float_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float bits_float(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// Shifts right by `shift` bits, rounding the dropped bits to nearest, ties to even.
std::uint32_t shift_right_round_even(std::uint32_t value, int shift) {
  if (shift >= 32) return 0;
  const std::uint32_t kept = value >> shift;
  const std::uint32_t dropped = value & ((1u << shift) - 1u);
  const std::uint32_t half_way = 1u << (shift - 1);
  if (dropped > half_way || (dropped == half_way && (kept & 1u))) return kept + 1u;
  return kept;
}

}  // namespace

std::uint16_t float_to_half_bits(float value) {
  const std::uint32_t bits = float_bits(value);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const int exponent = static_cast<int>((bits >> 23) & 0xFFu);
  const std::uint32_t mantissa = bits & 0x7FFFFFu;

  if (exponent == 0xFF) {  // inf or NaN: keep NaN quiet and non-zero
    if (mantissa == 0) return static_cast<std::uint16_t>(sign | 0x7C00u);
    return static_cast<std::uint16_t>(sign | 0x7E00u | (mantissa >> 13));
  }
  // Unbiased exponent; half normals cover 2^-14 .. 2^15.
  const int unbiased = exponent - 127;
  if (unbiased > 15) return static_cast<std::uint16_t>(sign | 0x7C00u);
  if (unbiased >= -14) {
    // Normal half: round the 23-bit mantissa to 10 bits. A carry out of the mantissa
    // correctly bumps the exponent (and 65520 and up become inf).
    const std::uint32_t rounded = shift_right_round_even((static_cast<std::uint32_t>(unbiased + 15) << 23) | mantissa, 13);
    return static_cast<std::uint16_t>(sign | rounded);
  }
  // Subnormal half (or zero): value = m * 2^-24, with the implicit bit made explicit.
  if (exponent == 0) return static_cast<std::uint16_t>(sign);  // fp32 subnormals are far below half's range
  const std::uint32_t full_mantissa = mantissa | 0x800000u;
  const int shift = 13 + (-14 - unbiased);  // 14..: bits to drop to reach units of 2^-24
  return static_cast<std::uint16_t>(sign | shift_right_round_even(full_mantissa, shift));
}

float half_bits_to_float(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1Fu;
  std::uint32_t mantissa = half & 0x3FFu;
  if (exponent == 0x1F) return bits_float(sign | 0x7F800000u | (mantissa << 13));
  if (exponent != 0) return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_float(sign);
  // Subnormal half: normalise into an fp32 normal.
  int shift = 0;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    ++shift;
  }
  mantissa &= 0x3FFu;
  return bits_float(sign | (static_cast<std::uint32_t>(113 - shift) << 23) | (mantissa << 13));
}

std::uint16_t float_to_bfloat16_bits(float value) {
  const std::uint32_t bits = float_bits(value);
  if ((bits & 0x7F800000u) == 0x7F800000u && (bits & 0x7FFFFFu) != 0) {
    return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN, sign kept
  }
  // Adding 0x7FFF plus the lowest kept bit rounds to nearest even; overflow to inf is correct.
  const std::uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

float bfloat16_bits_to_float(std::uint16_t bits) {
  return bits_float(static_cast<std::uint32_t>(bits) << 16);
}

}  // namespace ladder
