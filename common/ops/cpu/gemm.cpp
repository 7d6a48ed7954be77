// The CPU GEMM: the output is cut into blocks of whole columns (or rows) that depend only on the shape; each
// block is one single-threaded OpenBLAS call on the worker pool, with its 16-bit operands widened to fp32 just
// before and its result rounded into storage just after.
#include "common/ops/cpu/gemm.hpp"

#include <cblas.h>

#include <algorithm>
#include <limits>
#include <mutex>

#include "common/dtype_convert.hpp"
#include "common/error.hpp"
#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"
#include "common/ops/cpu/worker_pool.hpp"

namespace ladder::ops::cpu {

namespace {

// Blocks are a multiple of 32 wide (OpenBLAS's micro-kernels are 8 and 16 wide, so no block ends in a sliver);
// about 8 of them, so that two threads (or sixteen, given a large output) share the work evenly; at most 512,
// so a block's widened operand stays in cache; and at least 64 where the output allows, because every call packs
// the shared operand again, which costs about 1/(block/8) of the multiplications.
constexpr std::int64_t kBlockMultiple = 32;
constexpr std::int64_t kSmallestBlock = 64;
constexpr std::int64_t kLargestBlock = 512;
constexpr std::int64_t kTargetBlocks = 8;
// Rows widened by one task when a whole operand is widened before the blocks start.
constexpr std::int64_t kWidenedElementsPerTask = 1 << 16;

blasint blas_size(std::int64_t value) {
  LADDER_CHECK(value <= std::numeric_limits<blasint>::max(), "matmul: extent ", value,
               " exceeds what this OpenBLAS build can index (", std::numeric_limits<blasint>::max(), ")");
  return static_cast<blasint>(value);
}

CBLAS_TRANSPOSE transpose_flag(bool transpose) { return transpose ? CblasTrans : CblasNoTrans; }

// OpenBLAS's own threads would split each block again and spin between calls: it runs on the calling thread.
void keep_openblas_on_the_calling_thread() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// A row-major matrix as stored: `rows` rows of `cols` elements, each row `stride` elements after the last.
template <class T>
struct Matrix {
  T* data;
  std::int64_t rows;
  std::int64_t cols;
  std::int64_t stride;
  T* row(std::int64_t index) const { return data + index * stride; }
  Matrix part(std::int64_t first_row, std::int64_t row_count, std::int64_t first_col, std::int64_t col_count) const {
    return {data + first_row * stride + first_col, row_count, col_count, stride};
  }
};

// Row-major C (rows×cols) = op(A)·op(B) + beta·C: sgemm for float, dgemm for double.
void blas_gemm(bool transpose_a, bool transpose_b, Matrix<const float> a, Matrix<const float> b, float beta,
               Matrix<float> c, std::int64_t K) {
  cblas_sgemm(CblasRowMajor, transpose_flag(transpose_a), transpose_flag(transpose_b), blas_size(c.rows),
              blas_size(c.cols), blas_size(K), 1.0f, a.data, blas_size(a.stride), b.data, blas_size(b.stride), beta,
              c.data, blas_size(c.stride));
}

void blas_gemm(bool transpose_a, bool transpose_b, Matrix<const double> a, Matrix<const double> b, double beta,
               Matrix<double> c, std::int64_t K) {
  cblas_dgemm(CblasRowMajor, transpose_flag(transpose_a), transpose_flag(transpose_b), blas_size(c.rows),
              blas_size(c.cols), blas_size(K), 1.0, a.data, blas_size(a.stride), b.data, blas_size(b.stride), beta,
              c.data, blas_size(c.stride));
}

// A block's rows are often short and far apart in memory (a 96-column slice of a 768-wide fp16 weight is 192
// bytes out of every 1,536), and every block is converted in a pass of its own, with no arithmetic to hide the
// wait: the hardware prefetcher, which follows long streams, fetches little ahead of such a walk, and the thread
// waits on each row's cache lines in turn. Asking for the lines of the row kRowsAhead further on keeps several
// rows on their way at once. Measured on GPT-2's layers it doubled the rate at which a thread widens a block.
constexpr std::int64_t kRowsAhead = 8;
constexpr std::int64_t kCacheLineBytes = 64;

enum class Access { Read, Write };

// Asks for the cache lines of `count` elements from `row` on (to be read, or to be written): a hint only, so
// results cannot depend on it.
template <Access access, class T>
void prefetch_row(const T* row, std::int64_t count) {
  const char* bytes = reinterpret_cast<const char*>(row);
  const std::int64_t size = count * static_cast<std::int64_t>(sizeof(T));
  for (std::int64_t offset = 0; offset < size; offset += kCacheLineBytes) {
    __builtin_prefetch(bytes + offset, access == Access::Write ? 1 : 0);
  }
}

// Calls visit(r) for each row r of `rows`, having asked for the elements of row r + kRowsAhead first.
template <Access access, class T, class Visit>
void for_each_row_prefetching(const Matrix<T>& rows, Visit&& visit) {
  for (std::int64_t r = 0; r < rows.rows; ++r) {
    if (r + kRowsAhead < rows.rows) prefetch_row<access>(rows.row(r + kRowsAhead), rows.cols);
    visit(r);
  }
}

// The compute values of a stored matrix: the matrix itself for float and double, else its rows widened into
// `scratch` (rows·cols values, packed).
template <class S>
Matrix<const ComputeType<S>> compute_values(Matrix<const S> stored, ComputeType<S>* scratch) {
  if constexpr (!kIsReducedPrecision<S>) {
    return stored;
  } else {
    for_each_row_prefetching<Access::Read>(stored, [&](std::int64_t r) {
      load_span(stored.row(r), scratch + r * stored.cols, stored.cols);
    });
    return {scratch, stored.rows, stored.cols, stored.cols};
  }
}

// compute_values for an operand every block reads: widened once, its rows spread over the pool.
template <class S>
Matrix<const ComputeType<S>> shared_compute_values(Matrix<const S> stored, ComputeType<S>* scratch) {
  if constexpr (!kIsReducedPrecision<S>) {
    return stored;
  } else {
    const std::int64_t rows_per_task = std::max<std::int64_t>(1, kWidenedElementsPerTask / stored.cols);
    const std::int64_t tasks = (stored.rows + rows_per_task - 1) / rows_per_task;
    parallel_for(tasks, [&](std::int64_t task, int) {
      const std::int64_t first = task * rows_per_task, count = std::min(rows_per_task, stored.rows - first);
      compute_values(stored.part(first, count, 0, stored.cols), scratch + first * stored.cols);
    });
    return {scratch, stored.rows, stored.cols, stored.cols};
  }
}

// The stored part of `a` that holds op(a)'s rows [first, first + count), and of `b` that holds op(b)'s columns.
template <class S>
Matrix<const S> rows_of_op_a(const GemmArguments<S>& g, std::int64_t first, std::int64_t count) {
  if (g.transpose_a) return Matrix<const S>{g.a, g.K, g.M, g.lda}.part(0, g.K, first, count);
  return Matrix<const S>{g.a, g.M, g.K, g.lda}.part(first, count, 0, g.K);
}

template <class S>
Matrix<const S> columns_of_op_b(const GemmArguments<S>& g, std::int64_t first, std::int64_t count) {
  if (g.transpose_b) return Matrix<const S>{g.b, g.N, g.K, g.ldb}.part(first, count, 0, g.K);
  return Matrix<const S>{g.b, g.K, g.N, g.ldb}.part(0, g.K, first, count);
}

// One block of the output: its start written in compute values, the product added, the sums rounded once.
template <class S>
void multiply_block(const GemmArguments<S>& g, Matrix<const ComputeType<S>> a, Matrix<const ComputeType<S>> b,
                    Matrix<S> out, std::int64_t first_col, ComputeType<S>* out_scratch) {
  using Compute = ComputeType<S>;
  Matrix<Compute> values{nullptr, out.rows, out.cols, out.cols};
  if constexpr (kIsReducedPrecision<S>) {
    values.data = out_scratch;
    if (g.start == GemmStart::Accumulate) {
      // The stored sums are read now and overwritten below: their lines are asked for as ones to be written.
      for_each_row_prefetching<Access::Write>(out,
                                              [&](std::int64_t r) { load_span(out.row(r), values.row(r), out.cols); });
    }
  } else {
    values = out;
  }
  if (g.start == GemmStart::Bias) {
    for (std::int64_t r = 0; r < out.rows; ++r) load_span(g.bias + first_col, values.row(r), out.cols);
  }
  const Compute beta = g.start == GemmStart::Zero ? Compute(0) : Compute(1);
  blas_gemm(g.transpose_a, g.transpose_b, a, b, beta, values, g.K);
  if constexpr (kIsReducedPrecision<S>) {
    for_each_row_prefetching<Access::Write>(out,
                                            [&](std::int64_t r) { store_span(values.row(r), out.row(r), out.cols); });
  }
}

// With K = 0 the product is empty: the output is its start.
template <class S>
void write_start_only(const GemmArguments<S>& g) {
  if (g.start == GemmStart::Accumulate) return;
  for (std::int64_t r = 0; r < g.M; ++r) {
    S* row = g.out + r * g.ldc;
    if (g.start == GemmStart::Bias) std::copy(g.bias, g.bias + g.N, row);
    else std::fill(row, row + g.N, store<S>(ComputeType<S>(0)));
  }
}

}  // namespace

GemmBlocking gemm_blocking(std::int64_t M, std::int64_t N, std::int64_t K) {
  (void)K;  // every block spans all of K: splitting the dot products would round partial sums
  GemmBlocking blocking;
  // Cut the larger operand (op(b) has K·N values, op(a) K·M); the smaller is widened once and shared.
  blocking.by_columns = N >= M;
  const std::int64_t extent = blocking.by_columns ? N : M;
  const std::int64_t even_share = (extent + kTargetBlocks - 1) / kTargetBlocks;
  const std::int64_t rounded = (even_share + kBlockMultiple - 1) / kBlockMultiple * kBlockMultiple;
  blocking.block = std::min(extent, std::clamp(rounded, kSmallestBlock, kLargestBlock));
  blocking.count = extent == 0 ? 0 : (extent + blocking.block - 1) / blocking.block;
  return blocking;
}

template <class S>
void gemm(const GemmArguments<S>& g) {
  using Compute = ComputeType<S>;
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) return write_start_only(g);
  keep_openblas_on_the_calling_thread();
  const GemmBlocking blocking = gemm_blocking(g.M, g.N, g.K);
  const std::int64_t other_extent = blocking.by_columns ? g.M : g.N;
  // Scratch for 16-bit storage only, allocated here on the calling thread (the accountant is not thread-safe):
  // the shared operand, then per thread one block of the cut operand and one block of the output.
  const bool widens = kIsReducedPrecision<S>;
  const std::int64_t shared_size = widens ? other_extent * g.K : 0;
  const std::int64_t operand_size = widens ? blocking.block * g.K : 0;
  const std::int64_t output_size = widens ? blocking.block * other_extent : 0;
  const int slots = worker_threads();
  // No zeros needed: each part is written before it is read (a Zero start is sgemm's beta = 0, which BLAS
  // defines as not reading the output at all). Zeroing it cost a memset of every operand on every call.
  const Scratch<Compute> scratch(shared_size + slots * (operand_size + output_size), BufferContents::Uninitialized);
  Compute* const shared_scratch = scratch.data();
  const Matrix<const Compute> shared =
      blocking.by_columns ? shared_compute_values(rows_of_op_a(g, 0, g.M), shared_scratch)
                          : shared_compute_values(columns_of_op_b(g, 0, g.N), shared_scratch);
  const Matrix<S> out{g.out, g.M, g.N, g.ldc};
  parallel_for(blocking.count, [&](std::int64_t index, int slot) {
    Compute* const operand_scratch = shared_scratch + shared_size + slot * (operand_size + output_size);
    Compute* const output_scratch = operand_scratch + operand_size;
    const std::int64_t first = index * blocking.block;
    if (blocking.by_columns) {
      const std::int64_t count = std::min(blocking.block, g.N - first);
      const auto b = compute_values(columns_of_op_b(g, first, count), operand_scratch);
      multiply_block(g, shared, b, out.part(0, g.M, first, count), first, output_scratch);
    } else {
      const std::int64_t count = std::min(blocking.block, g.M - first);
      const auto a = compute_values(rows_of_op_a(g, first, count), operand_scratch);
      multiply_block(g, a, shared, out.part(first, count, 0, g.N), 0, output_scratch);
    }
  });
}

std::string gemm_description() {
  // The kernel family OpenBLAS picked for this CPU decides the order of the additions inside each block, so it is
  // what another machine must match to repeat a run's bits (OPENBLAS_CORETYPE=Haswell pins it on any AVX2 x86).
#if defined(OPENBLAS_VERSION)
  const std::string kernels = make_message(" (", openblas_get_corename(), " kernels)");
#else
  const std::string kernels;
#endif
  return make_message("OpenBLAS sgemm", kernels, ", single-threaded calls on blocks of the output spread over ",
                      worker_threads(), " thread(s); fp16/bf16 widened to fp32 a block at a time (",
                      conversion_path_name(conversion_path()), "), each result rounded once");
}

#define LADDER_INSTANTIATE_GEMM(S) template void gemm<S>(const GemmArguments<S>&);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_GEMM)

}  // namespace ladder::ops::cpu
