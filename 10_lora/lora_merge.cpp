// Merging: W0 + (α/r)·B·A written into the base, so that the adapted model costs nothing extra at inference.
#include "10_lora/lora_adapters.hpp"
#include "common/error.hpp"
#include "common/ops/ops.hpp"

namespace ladder::stage10 {

void LoraAdapters::merge_into(GPT& model, Tensor values, double sign) const {
  LADDER_CHECK(model.dtype() == dtype_ && model.config().layer_count * 4 == static_cast<int>(by_linear_.size()),
               "merge_into: the model is not the one these adapters were built for");
  const double factor = sign * settings_.scaling();
  const std::int64_t r = settings_.rank;
  for (std::size_t index = 0; index < adapters_.size(); ++index) {
    const LoraAdapter& adapter = adapters_[index];
    const std::int64_t rows = adapter.rows, columns = adapter.columns;
    // Done once, on the host, in double: W0 + (α/r)·Σ_q B[i,q]·A[q,j] is exact to 1e-16 before its one rounding.
    Buffer scratch(static_cast<std::size_t>(rows * columns + r * columns + rows * r) * sizeof(double),
                   MemoryCategory::Workspace, Device::CPU);
    double* weight = static_cast<double*>(scratch.data());
    double* a = weight + rows * columns;
    double* b = a + r * columns;
    const Tensor block = model.parameter(adapter.weight_name).slice(adapter.row_offset * columns, rows * columns);
    ops::convert_between_devices(Tensor(weight, DType::F64, {rows * columns}), block);
    ops::convert_between_devices(Tensor(a, DType::F64, {r * columns}), a_of(values, index).reshaped({r * columns}));
    ops::convert_between_devices(Tensor(b, DType::F64, {rows * r}), b_of(values, index).reshaped({rows * r}));
    for (std::int64_t i = 0; i < rows; ++i) {
      for (std::int64_t q = 0; q < r; ++q) {
        const double coefficient = factor * b[i * r + q];
        for (std::int64_t j = 0; j < columns; ++j) weight[i * columns + j] += coefficient * a[q * columns + j];
      }
    }
    ops::convert_between_devices(block, Tensor(weight, DType::F64, {rows * columns}));
  }
}

}  // namespace ladder::stage10
