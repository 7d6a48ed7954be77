/// @file gemm.hpp
/// @brief The CPU GEMM of every storage type: single-threaded OpenBLAS on fixed blocks of the output, the blocks
/// spread over the worker pool, fp16/bf16 operands widened to fp32 a block at a time.
///
/// Why blocks of our own rather than OpenBLAS's threads: the blocks depend only on the shape, and each is one
/// single-threaded sgemm call, so every output element is computed by the same instructions in the same order
/// whatever the thread count (bit-identical results at --threads 1 and 2); the pool's threads sleep between
/// GEMMs where OpenBLAS's spin in sched_yield; and a 16-bit operand is widened one block at a time into scratch
/// that stays in cache, instead of a whole fp32 copy of, say, the 50304×768 embedding table on every call.
#pragma once

#include <cstdint>
#include <string>

#include "common/dtype.hpp"

namespace ladder::ops::cpu {

/// How a GEMM's output starts before the product is added to it.
enum class GemmStart {
  Zero,        ///< out = op(a)·op(b)
  Accumulate,  ///< out += op(a)·op(b)
  Bias         ///< out = bias (one value per column, on every row) + op(a)·op(b)
};

/// One GEMM on row-major matrices: out (M×N) = start + op(a) (M×K) · op(b) (K×N), op a transpose where asked.
template <class S>
struct GemmArguments {
  bool transpose_a = false;  ///< a is stored K×M and used transposed
  bool transpose_b = false;  ///< b is stored N×K and used transposed
  std::int64_t M = 0;        ///< rows of out
  std::int64_t N = 0;        ///< columns of out
  std::int64_t K = 0;        ///< length of each dot product
  const S* a = nullptr;      ///< left operand
  std::int64_t lda = 0;      ///< elements between rows of a as stored
  const S* b = nullptr;      ///< right operand
  std::int64_t ldb = 0;      ///< elements between rows of b as stored
  S* out = nullptr;          ///< result
  std::int64_t ldc = 0;      ///< elements between rows of out
  GemmStart start = GemmStart::Zero;  ///< what the product is added to
  const S* bias = nullptr;   ///< N values, read when start is Bias
};

/// Computes the GEMM in `ComputeType<S>` (fp32 for fp16/bf16, with fp32 accumulation) and rounds each output
/// element into S once.
template <class S>
void gemm(const GemmArguments<S>& arguments);

/// How a GEMM's output is cut into blocks: whole columns or whole rows, `block` at a time (the last may be
/// shorter), `count` blocks. A function of the shape alone, never of the thread count.
struct GemmBlocking {
  bool by_columns = true;  ///< blocks of columns of out (else of rows)
  std::int64_t block = 0;  ///< columns (or rows) per block
  std::int64_t count = 0;  ///< number of blocks
};

/// The blocking gemm() uses for an M×N output with dot products of length K.
GemmBlocking gemm_blocking(std::int64_t M, std::int64_t N, std::int64_t K);

/// One line for logs: which library multiplies, on how many threads, and how fp16/bf16 reach it.
std::string gemm_description();

}  // namespace ladder::ops::cpu
