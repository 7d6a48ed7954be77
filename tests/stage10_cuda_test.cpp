// Stage 10 on the GPU against the CPU: the same adapters on the same frozen base give the same loss and adapter
// gradients, zero B changes no bit of the GPU base's logits, and the training steps and the merge track the CPU's.
// Skips where no GPU is visible. The adapters run through the model's ops, so this covers the GPU path of LoRA.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "10_lora/lora_training.hpp"
#include "tests/stage10_test_support.hpp"

namespace ladder {
namespace {

using testing_support::lora_settings;
using testing_support::lora_test_batch;

class Stage10Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA GPU visible: stage 10's GPU path is compiled but cannot run";
  }
};

// Odd sizes, as the model's GPU test uses: 3 heads of 8, 3 layers.
GPTConfig test_config() {
  GPTConfig config = named_config("tiny", 50);
  config.layer_count = 3;
  config.head_count = 3;
  config.channels = 24;
  config.validate();
  return config;
}

std::vector<double> host_values(Tensor values) {
  std::vector<double> host(static_cast<std::size_t>(values.numel()));
  ops::convert_between_devices(Tensor(host.data(), DType::F64, {values.numel()}), values);
  return host;
}

double scaled_difference(const std::vector<double>& gpu, const std::vector<double>& cpu) {
  double largest = 0, difference = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    if (std::isnan(gpu[i])) return INFINITY;
    largest = std::max(largest, std::abs(cpu[i]));
    difference = std::max(difference, std::abs(gpu[i] - cpu[i]));
  }
  return difference / std::max(largest, 1e-30);
}

// LoRA on every target at r = 4, on each device, with the same base and the same non-zero adapters.
struct TwinLora {
  explicit TwinLora(DType dtype)
      : cpu(test_config(), AdamWConfig{}, lora_settings({"q", "k", "v", "o", "fc", "proj"}, 4), 3, 3, 13, Device::CPU,
            dtype),
        gpu(test_config(), AdamWConfig{}, lora_settings({"q", "k", "v", "o", "fc", "proj"}, 4), 3, 3, 13,
            Device::CUDA, dtype) {
    cpu.model.initialize(5);
    gpu.model.initialize(5);
    testing_support::randomize_adapters(cpu, 9);
    ops::convert_between_devices(gpu.master.weights(), cpu.master.weights());
    ops::convert(gpu.adapters.weights(), gpu.master.weights());
  }
  stage10::LoraTraining cpu;
  stage10::LoraTraining gpu;
};

TEST_F(Stage10Cuda, LossAndAdapterGradientsMatchTheCpuInFp32) {
  TwinLora twins(DType::F32);
  const Batch batch = lora_test_batch(50, 3, 13, 4);
  const double cpu_loss = twins.cpu.model.forward(batch), gpu_loss = twins.gpu.model.forward(batch);
  EXPECT_NEAR(gpu_loss, cpu_loss, 1e-5 * cpu_loss);
  for (stage10::LoraTraining* lora : {&twins.cpu, &twins.gpu}) {
    lora->adapters.zero_gradients();
    lora->model.backward();
  }
  // The model's GPU test allows 1e-4 of the largest gradient; the adapters' come through the same ops.
  EXPECT_LT(scaled_difference(host_values(twins.gpu.adapters.gradients()), host_values(twins.cpu.adapters.gradients())),
            1e-4);
}

TEST_F(Stage10Cuda, ZeroBLeavesTheGpuBasesLogitsBitForBit) {
  GPT base(test_config(), DType::BF16, 3, 13, 1, Device::CUDA);
  base.initialize(5);
  stage10::LoraTraining lora(test_config(), AdamWConfig{}, lora_settings({"q", "v", "fc"}, 4), 3, 3, 13,
                             Device::CUDA);
  lora.model.initialize(5);
  const Batch batch = lora_test_batch(50, 3, 13, 6);
  EXPECT_EQ(base.forward(batch), lora.model.forward(batch));
  for (int row = 0; row < 3; ++row) {
    for (int t = 0; t < 13; ++t) EXPECT_EQ(base.logits_at(row, t), lora.model.logits_at(row, t)) << row << "," << t;
  }
}

TEST_F(Stage10Cuda, Bf16StepsAndMergeTrackTheCpu) {
  // bf16 on both devices, summed in different orders: 2e-2 relative on the loss, as the model's bf16 GPU test.
  TwinLora twins(DType::BF16);
  for (int step = 0; step < 5; ++step) {
    const Batch batch = lora_test_batch(50, 3, 13, 20 + static_cast<std::uint64_t>(step));
    const double cpu_loss = twins.cpu.model.forward(batch), gpu_loss = twins.gpu.model.forward(batch);
    EXPECT_NEAR(gpu_loss, cpu_loss, 2e-2 * cpu_loss) << "step " << step;
    for (stage10::LoraTraining* lora : {&twins.cpu, &twins.gpu}) {
      lora->adapters.zero_gradients();
      lora->model.backward();
      lora->step(1e-2);
    }
  }
  twins.cpu.merge();
  twins.gpu.merge();
  EXPECT_LT(scaled_difference(host_values(twins.gpu.model.parameters()), host_values(twins.cpu.model.parameters())),
            2e-2);
}

}  // namespace
}  // namespace ladder
