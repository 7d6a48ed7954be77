// The linear layer, out = inp · weightᵀ + bias: all of the model's GEMMs, through OpenBLAS.
#include <cblas.h>

#include <algorithm>
#include <limits>

#include "common/error.hpp"
#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

namespace {

blasint blas_size(std::int64_t value) {
  LADDER_CHECK(value <= std::numeric_limits<blasint>::max(), "matmul: extent ", value,
               " exceeds what this OpenBLAS build can index (", std::numeric_limits<blasint>::max(), ")");
  return static_cast<blasint>(value);
}

CBLAS_TRANSPOSE transpose_flag(bool transpose) { return transpose ? CblasTrans : CblasNoTrans; }

// Row-major result (M,N) = op(a) (M,K) · op(b) (K,N) + beta · result, with op a transpose where asked.
// The float and double overloads pick sgemm or dgemm; everything else is converted to float before it gets here.
void gemm(bool transpose_a, bool transpose_b, std::int64_t M, std::int64_t N, std::int64_t K, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* result, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, transpose_flag(transpose_a), transpose_flag(transpose_b), blas_size(M), blas_size(N),
              blas_size(K), 1.0f, a, blas_size(lda), b, blas_size(ldb), beta, result, blas_size(ldc));
}

void gemm(bool transpose_a, bool transpose_b, std::int64_t M, std::int64_t N, std::int64_t K, const double* a,
          std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* result, std::int64_t ldc) {
  cblas_dgemm(CblasRowMajor, transpose_flag(transpose_a), transpose_flag(transpose_b), blas_size(M), blas_size(N),
              blas_size(K), 1.0, a, blas_size(lda), b, blas_size(ldb), beta, result, blas_size(ldc));
}

// BLAS rejects zero leading dimensions, so empty products are handled here: the sum over K = 0 terms is zero.
template <class Compute>
void gemm_allowing_empty(bool transpose_a, bool transpose_b, std::int64_t M, std::int64_t N, std::int64_t K,
                         const Compute* a, std::int64_t lda, const Compute* b, std::int64_t ldb, Compute beta,
                         Compute* result, std::int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (beta == Compute(0)) {
      for (std::int64_t row = 0; row < M; ++row) std::fill(result + row * ldc, result + row * ldc + N, Compute(0));
    }
    return;
  }
  gemm(transpose_a, transpose_b, M, N, K, a, lda, b, ldb, beta, result, ldc);
}

}  // namespace

template <class S>
void matmul_forward(S* out, const S* inp, const S* weight, const S* bias, std::int64_t N, std::int64_t C,
                    std::int64_t OC) {
  using Compute = ComputeType<S>;
  const ComputeView<S> inp_values(inp, N * C);
  const ComputeView<S> weight_values(weight, OC * C);
  const ComputeTarget<S> result(out, N * OC, /*keep_contents=*/false);
  // Starting every row from the bias and letting the GEMM add to it (beta = 1) rounds each output once.
  Compute beta = 0;
  if (bias != nullptr) {
    const ComputeView<S> bias_values(bias, OC);
    for (std::int64_t n = 0; n < N; ++n) std::copy(bias_values.data(), bias_values.data() + OC, result.data() + n * OC);
    beta = 1;
  }
  gemm_allowing_empty(false, true, N, OC, C, inp_values.data(), C, weight_values.data(), C, beta, result.data(), OC);
  result.store();
}

template <class S>
void matmul_backward(S* dinp, S* dweight, S* dbias, const S* dout, const S* inp, const S* weight, std::int64_t N,
                     std::int64_t C, std::int64_t OC) {
  using Compute = ComputeType<S>;
  const ComputeView<S> dout_values(dout, N * OC);
  {
    // dinp (N,C) += dout (N,OC) · weight (OC,C)
    const ComputeView<S> weight_values(weight, OC * C);
    const ComputeTarget<S> dinp_values(dinp, N * C, /*keep_contents=*/true);
    gemm_allowing_empty(false, false, N, C, OC, dout_values.data(), OC, weight_values.data(), C, Compute(1),
                        dinp_values.data(), C);
    dinp_values.store();
  }
  if (dweight != nullptr) {
    // dweight (OC,C) += doutᵀ (OC,N) · inp (N,C)
    const ComputeView<S> inp_values(inp, N * C);
    const ComputeTarget<S> dweight_values(dweight, OC * C, /*keep_contents=*/true);
    gemm_allowing_empty(true, false, OC, C, N, dout_values.data(), OC, inp_values.data(), C, Compute(1),
                        dweight_values.data(), C);
    dweight_values.store();
  }
  if (dbias != nullptr) {
    // The bias is added to every row, so its gradient is the column sum of dout.
    Scratch<Compute> column_sums(OC);
    for (std::int64_t n = 0; n < N; ++n) {
      const Compute* dout_row = dout_values.data() + n * OC;
      for (std::int64_t o = 0; o < OC; ++o) column_sums[o] += dout_row[o];
    }
    for (std::int64_t o = 0; o < OC; ++o) dbias[o] = store<S>(load<S>(dbias[o]) + column_sums[o]);
  }
}

#define LADDER_INSTANTIATE_MATMUL(S)                                                                           \
  template void matmul_forward<S>(S*, const S*, const S*, const S*, std::int64_t, std::int64_t, std::int64_t); \
  template void matmul_backward<S>(S*, S*, S*, const S*, const S*, const S*, std::int64_t, std::int64_t, std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_MATMUL)

}  // namespace ladder::ops::cpu
