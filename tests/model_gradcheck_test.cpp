// The whole GPT's backward against central finite differences, in double precision, on the tiny config.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/model/gpt.hpp"

namespace ladder {
namespace {

Batch tiny_batch(int vocab_size, int batch_size, int sequence_length) {
  Batch batch;
  batch.batch_size = batch_size;
  batch.sequence_length = sequence_length;
  for (int i = 0; i < batch_size * sequence_length; ++i) {
    batch.inputs.push_back((i * 7 + 3) % vocab_size);
    // Every fifth target is ignored, so the masked mean is part of what is checked.
    batch.targets.push_back(i % 5 == 4 ? -1 : (i * 5 + 1) % vocab_size);
  }
  return batch;
}

TEST(ModelGradcheck, EveryParameterMatchesCentralDifferencesInDouble) {
  GPTConfig config = named_config("tiny", 13);
  GPT model(config, DType::F64, 2, 5);
  model.initialize(7);
  // Larger weights than GPT-2's 0.02 make every path of the network carry a visible gradient.
  double* parameters = model.parameters().as<double>();
  for (std::int64_t i = 0; i < model.parameters().numel(); ++i) parameters[i] *= 10.0;
  const Batch batch = tiny_batch(config.vocab_size, 2, 5);

  model.forward(batch);
  model.zero_gradients();
  model.backward();
  const std::vector<double> analytic(model.gradients().as<double>(),
                                     model.gradients().as<double>() + model.gradients().numel());

  // Central differences in double: truncation error ~ h² and rounding ~ 1e-16/h, both far below 1e-7 at h = 1e-5.
  const double h = 1e-5;
  double worst = 0;
  std::string worst_name;
  for (const ParameterTensor& tensor : model.layout().tensors()) {
    double largest = 0;
    std::vector<double> numeric(static_cast<std::size_t>(tensor.numel));
    for (std::int64_t i = 0; i < tensor.numel; ++i) {
      double& value = parameters[tensor.offset + i];
      const double saved = value;
      value = saved + h;
      const double up = model.forward(batch);
      value = saved - h;
      const double down = model.forward(batch);
      value = saved;
      numeric[static_cast<std::size_t>(i)] = (up - down) / (2 * h);
      largest = std::max(largest, std::abs(numeric[static_cast<std::size_t>(i)]));
    }
    for (std::int64_t i = 0; i < tensor.numel; ++i) {
      // Error relative to the tensor's largest gradient (with a floor), since some entries are exactly zero.
      const double error = std::abs(analytic[static_cast<std::size_t>(tensor.offset + i)] - numeric[static_cast<std::size_t>(i)]) /
                           std::max(largest, 1e-3);
      if (error > worst) {
        worst = error;
        worst_name = tensor.name;
      }
    }
  }
  EXPECT_LT(worst, 1e-6) << "worst relative gradient error in " << worst_name;
}

TEST(ModelGradcheck, LossScaleScalesEveryGradient) {
  GPT model(named_config("tiny", 13), DType::F64, 2, 5);
  model.initialize(3);
  const Batch batch = tiny_batch(13, 2, 5);
  model.forward(batch);
  model.zero_gradients();
  model.backward(1.0);
  const std::vector<double> once(model.gradients().as<double>(), model.gradients().as<double>() + model.gradients().numel());
  model.forward(batch);
  model.zero_gradients();
  model.backward(1024.0);
  for (std::size_t i = 0; i < once.size(); ++i) {
    ASSERT_NEAR(model.gradients().as<double>()[i], 1024.0 * once[i], 1e-9 * (1 + std::abs(1024.0 * once[i])));
  }
}

}  // namespace
}  // namespace ladder
