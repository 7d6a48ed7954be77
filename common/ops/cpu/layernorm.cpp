// LayerNorm over the channels of each row: normalise to zero mean and unit variance, then scale and shift.
#include <cmath>

#include "common/ops/cpu/compute_values.hpp"
#include "common/ops/cpu/cpu_ops.hpp"

namespace ladder::ops::cpu {

template <class S>
void layernorm_forward(S* out, ComputeType<S>* mean, ComputeType<S>* rstd, const S* inp, const S* weight, const S* bias,
                       std::int64_t N, std::int64_t C) {
  using Compute = ComputeType<S>;
  const Compute epsilon = Compute(1e-5);
  const Compute channels = static_cast<Compute>(C);
  const ComputeView<S> weight_values(weight, C);
  const ComputeView<S> bias_values(bias, C);
  const Compute* w = weight_values.data();
  const Compute* shift = bias_values.data();
  for (std::int64_t n = 0; n < N; ++n) {
    const ComputeView<S> row(inp + n * C, C);
    Compute sum = 0;
    for (std::int64_t c = 0; c < C; ++c) sum += row[c];
    const Compute row_mean = sum / channels;
    // Two passes (mean first, then squared deviations) avoid the cancellation of E[x²] - E[x]².
    Compute squared_deviations = 0;
    for (std::int64_t c = 0; c < C; ++c) {
      const Compute deviation = row[c] - row_mean;
      squared_deviations += deviation * deviation;
    }
    const Compute row_rstd = Compute(1) / std::sqrt(squared_deviations / channels + epsilon);
    const ComputeTarget<S> out_row(out + n * C, C, /*keep_contents=*/false);
    for (std::int64_t c = 0; c < C; ++c) out_row[c] = (row[c] - row_mean) * row_rstd * w[c] + shift[c];
    out_row.store();
    mean[n] = row_mean;
    rstd[n] = row_rstd;
  }
}

template <class S>
void layernorm_backward(S* dinp, S* dweight, S* dbias, const S* dout, const S* inp, const S* weight,
                        const ComputeType<S>* mean, const ComputeType<S>* rstd, std::int64_t N, std::int64_t C) {
  using Compute = ComputeType<S>;
  const Compute channels = static_cast<Compute>(C);
  const ComputeView<S> weight_values(weight, C);
  const Compute* w = weight_values.data();
  // dweight and dbias sum over all N rows: sum in the compute type, round into storage once at the end.
  Scratch<Compute> dweight_sum(C);
  Scratch<Compute> dbias_sum(C);
  Scratch<Compute> normalized(C);   // x̂ of the current row
  Scratch<Compute> dnormalized(C);  // dL/dx̂ = weight · dout
  for (std::int64_t n = 0; n < N; ++n) {
    const ComputeView<S> inp_row(inp + n * C, C);
    const ComputeView<S> dout_row(dout + n * C, C);
    Compute dnormalized_mean = 0;
    Compute dnormalized_dot_normalized_mean = 0;
    for (std::int64_t c = 0; c < C; ++c) {
      const Compute x_hat = (inp_row[c] - mean[n]) * rstd[n];
      const Compute dy = dout_row[c];
      normalized[c] = x_hat;
      dnormalized[c] = w[c] * dy;
      dnormalized_mean += dnormalized[c];
      dnormalized_dot_normalized_mean += dnormalized[c] * x_hat;
      dbias_sum[c] += dy;
      dweight_sum[c] += x_hat * dy;
    }
    dnormalized_mean /= channels;
    dnormalized_dot_normalized_mean /= channels;
    // x̂ depends on every x of the row through the mean and the variance; those two paths are the subtracted terms.
    const ComputeTarget<S> dinp_row(dinp + n * C, C, /*keep_contents=*/true);
    for (std::int64_t c = 0; c < C; ++c) {
      dinp_row[c] += (dnormalized[c] - dnormalized_mean - normalized[c] * dnormalized_dot_normalized_mean) * rstd[n];
    }
    dinp_row.store();
  }
  if (dweight == nullptr) return;  // a frozen LayerNorm: its parameters want no gradient
  for (std::int64_t c = 0; c < C; ++c) {
    dweight[c] = store<S>(load<S>(dweight[c]) + dweight_sum[c]);
    dbias[c] = store<S>(load<S>(dbias[c]) + dbias_sum[c]);
  }
}

#define LADDER_INSTANTIATE_LAYERNORM(S)                                                                                \
  template void layernorm_forward<S>(S*, ComputeType<S>*, ComputeType<S>*, const S*, const S*, const S*, std::int64_t, \
                                     std::int64_t);                                                                    \
  template void layernorm_backward<S>(S*, S*, S*, const S*, const S*, const S*, const ComputeType<S>*,                 \
                                      const ComputeType<S>*, std::int64_t, std::int64_t);
LADDER_FOR_EACH_STORAGE_TYPE(LADDER_INSTANTIATE_LAYERNORM)

}  // namespace ladder::ops::cpu
