// What stage 10's tests share: a tiny base and batch, LoRA state on it with chosen settings, random adapter weights,
// and the logits of a whole batch.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "10_lora/lora_training.hpp"
#include "common/model/gpt.hpp"
#include "common/ops/ops.hpp"
#include "common/random.hpp"

namespace ladder::testing_support {

/// The tiny config with a vocabulary of 13 (padded to 16): C = 16, L = 2.
inline GPTConfig lora_test_config() { return named_config("tiny", 13); }

/// A batch of random tokens; every fifth target ignored.
inline Batch lora_test_batch(int vocab_size, int batch_size, int sequence_length, std::uint64_t seed) {
  Random random(seed);
  Batch batch;
  batch.batch_size = batch_size;
  batch.sequence_length = sequence_length;
  for (int i = 0; i < batch_size * sequence_length; ++i) {
    batch.inputs.push_back(static_cast<std::int32_t>(random.below(static_cast<std::uint64_t>(vocab_size))));
    batch.targets.push_back(i % 5 == 4 ? -1 : static_cast<std::int32_t>(random.below(static_cast<std::uint64_t>(vocab_size))));
  }
  return batch;
}

/// LoRA settings for `targets` at rank `rank` (α as given, 0: = r).
inline stage10::LoraSettings lora_settings(std::vector<std::string> targets, int rank, double alpha = 0) {
  stage10::LoraSettings settings;
  settings.targets = std::move(targets);
  settings.rank = rank;
  settings.alpha = alpha;
  return settings;
}

/// Uniform values in [-scale, scale) from `seed`, rounded into `values` (any float dtype, host memory).
inline void fill_uniform(Tensor values, std::uint64_t seed, double scale) {
  Random random(seed);
  std::vector<double> drawn(static_cast<std::size_t>(values.numel()));
  for (double& value : drawn) value = scale * (2 * random.uniform() - 1);
  ops::convert_between_devices(values, Tensor(drawn.data(), DType::F64, {values.numel()}));
}

/// Non-zero A and B: the fp32 master drawn from `seed`, rounded into the working copy (as a step leaves them).
inline void randomize_adapters(stage10::LoraTraining& training, std::uint64_t seed, double scale = 0.2) {
  fill_uniform(training.master.weights(), seed, scale);
  ops::convert(training.adapters.weights(), training.master.weights());
}

/// LoRA state on the tiny config whose frozen base holds the weights `model.initialize(base_seed)` draws.
inline std::unique_ptr<stage10::LoraTraining> lora_on_tiny_base(const stage10::LoraSettings& settings, DType dtype,
                                                              std::uint64_t base_seed, int batch_size = 2,
                                                              int sequence_length = 5) {
  auto training = std::make_unique<stage10::LoraTraining>(lora_test_config(), AdamWConfig{}, settings, 7, batch_size,
                                                          sequence_length, Device::CPU, dtype);
  training->model.initialize(base_seed);
  return training;
}

/// Every logit (real vocabulary) of every position of the last forward, as fp32, row by row.
inline std::vector<float> all_logits(const GPT& model, int batch_size, int sequence_length) {
  std::vector<float> logits;
  for (int row = 0; row < batch_size; ++row) {
    for (int t = 0; t < sequence_length; ++t) {
      const std::vector<float> position = model.logits_at(row, t);
      logits.insert(logits.end(), position.begin(), position.end());
    }
  }
  return logits;
}

/// The largest magnitude among `values`.
inline double largest_magnitude(const std::vector<float>& values) {
  double largest = 0;
  for (float value : values) largest = std::max(largest, static_cast<double>(std::abs(value)));
  return largest;
}

}  // namespace ladder::testing_support
