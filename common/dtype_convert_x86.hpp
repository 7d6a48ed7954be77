/// @file dtype_convert_x86.hpp
/// @brief The x86 span conversions behind dtype_convert.hpp (F16C and AVX2), compiled for those instructions
/// alone, so that a caller must first make sure the CPU has them (f16c_avx2_available).
#pragma once

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
/// Defined where the x86 kernels below are compiled.
#define LADDER_X86_CONVERSIONS 1
#endif

namespace ladder::x86 {

/// True when this CPU and its operating system support F16C and AVX2 (always false off x86).
bool f16c_avx2_available();

#ifdef LADDER_X86_CONVERSIONS

/// fp16 bits to fp32, eight at a time with vcvtph2ps; signalling NaNs keep their payload as the reference does.
void widen_half_f16c(const std::uint16_t* source, float* destination, std::int64_t count);

/// fp32 to fp16 bits with vcvtps2ph, rounding to nearest even.
void round_half_f16c(const float* source, std::uint16_t* destination, std::int64_t count);

/// bf16 bits to fp32 (a 16-bit shift), eight at a time.
void widen_bfloat16_avx2(const std::uint16_t* source, float* destination, std::int64_t count);

/// fp32 to bf16 bits, rounding to nearest even, with the reference's NaN rule, eight at a time.
void round_bfloat16_avx2(const float* source, std::uint16_t* destination, std::int64_t count);
#endif

}  // namespace ladder::x86
