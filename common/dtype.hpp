/// @file dtype.hpp
/// @brief Element types: fp32, fp64 (CPU gradient checks), and host fp16/bf16 with bit-exact rounding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace ladder {

/// Storage type of a tensor's elements (I32 is for token ids).
enum class DType { F32, F16, BF16, F64, I32 };

/// Size of one element in bytes.
std::size_t dtype_size(DType dtype);

/// Name as safetensors spells it ("F32", "F16", "BF16", "F64", "I32").
std::string dtype_name(DType dtype);

/// Converts an fp32 value to IEEE binary16 bits, rounding to nearest even (subnormals, inf, NaN kept).
std::uint16_t float_to_half_bits(float value);

/// Converts IEEE binary16 bits to the exactly equal fp32 value.
float half_bits_to_float(std::uint16_t bits);

/// Converts an fp32 value to bfloat16 bits, rounding to nearest even (NaN stays a quiet NaN).
std::uint16_t float_to_bfloat16_bits(float value);

/// Converts bfloat16 bits to the exactly equal fp32 value.
float bfloat16_bits_to_float(std::uint16_t bits);

/// Host-side IEEE half: 16 bits in memory, converted with round-to-nearest-even on store.
struct Half {
  std::uint16_t bits = 0;  ///< raw binary16 pattern
  Half() = default;
  /// Rounds a float to the nearest half (ties to even).
  explicit Half(float value) : bits(float_to_half_bits(value)) {}
  /// The exact float value of this half.
  explicit operator float() const { return half_bits_to_float(bits); }
};

/// Host-side bfloat16: the top 16 bits of an fp32, rounded to nearest even on store.
struct BFloat16 {
  std::uint16_t bits = 0;  ///< raw bfloat16 pattern
  BFloat16() = default;
  /// Rounds a float to the nearest bfloat16 (ties to even).
  explicit BFloat16(float value) : bits(float_to_bfloat16_bits(value)) {}
  /// The exact float value of this bfloat16.
  explicit operator float() const { return bfloat16_bits_to_float(bits); }
};

/// Arithmetic type for a storage type: reduced precision accumulates in fp32, fp64 stays fp64.
template <class Storage>
using ComputeType = std::conditional_t<std::is_same_v<Storage, double>, double, float>;

/// Reads a stored element as its compute type.
template <class Storage>
inline ComputeType<Storage> load(Storage value) {
  return static_cast<ComputeType<Storage>>(value);
}

/// Rounds a compute value into storage (the one place reduced precision loses bits).
template <class Storage>
inline Storage store(ComputeType<Storage> value) {
  return Storage(value);
}

/// The DType tag of a C++ storage type.
template <class Storage>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<Storage, float>) return DType::F32;
  else if constexpr (std::is_same_v<Storage, double>) return DType::F64;
  else if constexpr (std::is_same_v<Storage, Half>) return DType::F16;
  else if constexpr (std::is_same_v<Storage, std::int32_t>) return DType::I32;
  else {
    static_assert(std::is_same_v<Storage, BFloat16>, "unsupported storage type");
    return DType::BF16;
  }
}

}  // namespace ladder
