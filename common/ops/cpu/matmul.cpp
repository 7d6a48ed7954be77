// The linear layer, out = inp · weightᵀ + bias: all of the model's GEMMs, through gemm.hpp (OpenBLAS on blocks).
#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"
#include "common/ops/cpu/gemm.hpp"

namespace ladder::ops::cpu {

template <class S>
void matmul_forward(S* out, const S* inp, const S* weight, const S* bias, std::int64_t N, std::int64_t C,
                    std::int64_t OC) {
  // out (N,OC) = inp (N,C) · weight (OC,C)ᵀ. Starting every row from the bias and adding the product to it
  // rounds each output once.
  gemm(GemmArguments<S>{.transpose_b = true, .M = N, .N = OC, .K = C, .a = inp, .lda = C, .b = weight, .ldb = C,
                        .out = out, .ldc = OC, .start = bias != nullptr ? GemmStart::Bias : GemmStart::Zero,
                        .bias = bias});
}

template <class S>
void matmul_backward(S* dinp, S* dweight, S* dbias, const S* dout, const S* inp, const S* weight, std::int64_t N,
                     std::int64_t C, std::int64_t OC) {
  using Compute = ComputeType<S>;
  // dinp (N,C) += dout (N,OC) · weight (OC,C)
  gemm(GemmArguments<S>{.M = N, .N = C, .K = OC, .a = dout, .lda = OC, .b = weight, .ldb = C, .out = dinp, .ldc = C,
                        .start = GemmStart::Accumulate});
  if (dweight != nullptr) {  // a frozen weight (stage 10's base) has no gradient: skip its GEMM
    // dweight (OC,C) += doutᵀ (OC,N) · inp (N,C)
    gemm(GemmArguments<S>{.transpose_a = true, .M = OC, .N = C, .K = N, .a = dout, .lda = OC, .b = inp, .ldb = C,
                          .out = dweight, .ldc = C, .start = GemmStart::Accumulate});
  }
  if (dbias != nullptr) {
    // The bias is added to every row, so its gradient is the column sum of dout.
    Scratch<Compute> column_sums(OC);
    Scratch<Compute> dout_row(OC);
    for (std::int64_t n = 0; n < N; ++n) {
      load_span(dout + n * OC, dout_row.data(), OC);
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
