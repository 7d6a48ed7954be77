// Whether a data-parallel reduction delivers the mean over ranks and not the sum: after backward and the
// reduction, every gradient element a rank holds must equal the gradient of the whole global batch computed by
// one process. Adam is almost blind to a constant factor, so losses alone could not tell (tried: stage 06 with
// Sum instead of Average passed every loss comparison). fp32 models, so the only difference left is the order in
// which rows are summed: ~1e-6 relative.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "tests/mpi/sharded_run_support.hpp"

namespace ladder::sharded_runs {

/// The fp32 gradient of the whole global batch (N·b rows) of step 0, computed by one process, in the layout
/// padded for the world size.
inline std::vector<float> single_process_gradient() {
  const int world_size = world().world_size();
  const auto whole_batch = data_for(0, 1, kRowsPerRank * world_size);
  GPT model(tiny_config(), DType::F32, kRowsPerRank * world_size, kSequenceLength, world_size);
  model.initialize(11);
  model.forward(whole_batch->train_batch(0));
  model.zero_gradients();
  model.backward();
  return floats_of(model.gradients());
}

/// Builds an fp32 model (with `storage`) on this rank's rows of step 0, lets `reduce` run backward with its hooks and the reduction
/// and return the (layout offset, values) pieces this rank then holds, and checks them against the single-process
/// gradient: |difference| <= 1e-5 of the largest gradient.
inline void expect_mean_of_global_batch(
    GPTStorage storage,
    const std::function<std::vector<std::pair<std::int64_t, std::vector<float>>>(GPT& model, const Batch& batch)>&
        reduce) {
  const std::vector<float> reference = single_process_gradient();
  Communicator& comm = world();
  const auto data = data_for(comm.rank(), comm.world_size());
  GPT model(tiny_config(), DType::F32, kRowsPerRank, kSequenceLength, comm.world_size(), Device::CPU,
            storage);
  model.initialize(11);
  const auto pieces = reduce(model, data->train_batch(0));
  float largest = 0;
  for (float value : reference) largest = std::max(largest, std::abs(value));
  std::int64_t checked = 0, wrong = 0;
  for (const auto& [offset, values] : pieces) {
    for (std::size_t i = 0; i < values.size(); ++i, ++checked) {
      wrong += std::abs(values[i] - reference[static_cast<std::size_t>(offset) + i]) > 1e-5f * largest;
    }
  }
  EXPECT_GT(checked, 0);
  EXPECT_EQ(wrong, 0) << "of " << checked << " gradient elements differ from the global batch's mean gradient";
}

}  // namespace ladder::sharded_runs
