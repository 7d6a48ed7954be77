/// @file dtype_convert.hpp
/// @brief Whole spans of fp16/bf16 converted to and from fp32, with the CPU's conversion instructions where it has them.
///
/// The element conversions of dtype.hpp are the reference: readable, portable, one value at a time. These
/// functions give exactly the same bits (every 16-bit pattern and NaN payload included, tests check it) and are
/// what the CPU ops use wherever they convert more than a few values: on x86 with F16C and AVX2 (checked at run
/// time, so one binary runs on any x86-64) eight values an instruction, elsewhere the reference in a loop.
#pragma once

#include <cstdint>
#include <string>

#include "common/dtype.hpp"

namespace ladder {

/// How the span conversions are carried out.
enum class ConversionPath {
  Portable,   ///< dtype.hpp's element conversions in a loop (any CPU; the reference)
  X86F16cAvx2 ///< F16C's vcvtph2ps/vcvtps2ph for fp16, AVX2 integer arithmetic for bf16
};

/// Short name of a path for logs ("portable", "x86 f16c+avx2").
std::string conversion_path_name(ConversionPath path);

/// True when this CPU can run `path` (Portable always can).
bool conversion_path_supported(ConversionPath path);

/// The path the conversions use now: the fastest this CPU supports unless use_conversion_path chose another.
ConversionPath conversion_path();

/// Makes the conversions use `path` (tests compare the paths); throws LadderError if this CPU cannot run it.
void use_conversion_path(ConversionPath path);

/// destination[i] = the exact fp32 value of source[i], for `count` fp16 values.
void widen_to_float(const Half* source, float* destination, std::int64_t count);

/// destination[i] = the exact fp32 value of source[i], for `count` bf16 values.
void widen_to_float(const BFloat16* source, float* destination, std::int64_t count);

/// destination[i] = source[i] rounded to fp16 (nearest, ties to even), for `count` values.
void round_from_float(const float* source, Half* destination, std::int64_t count);

/// destination[i] = source[i] rounded to bf16 (nearest, ties to even), for `count` values.
void round_from_float(const float* source, BFloat16* destination, std::int64_t count);

}  // namespace ladder
