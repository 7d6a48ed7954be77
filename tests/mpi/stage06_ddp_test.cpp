// Stage 06 under mpiexec: N replicas with b rows each against one process with N·b rows, and the properties of
// the buckets (size, overlap, delay, bytes, memory). Every rank computes the single-process reference itself.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "01_fp32_baseline/fp32_training.hpp"
#include "05_bf16/bf16_training.hpp"
#include "06_ddp/gradient_buckets.hpp"
#include "common/data/data_source.hpp"

namespace ladder {
namespace {

Communicator& world() {
  static std::unique_ptr<Communicator> communicator = make_communicator("mpi");
  return *communicator;
}

constexpr int kRowsPerRank = 4;
constexpr int kSteps = 10;
constexpr double kLearningRate = 3e-3;

struct TrainingRun {
  std::vector<double> losses;       // global mean loss per step
  std::vector<float> master;        // final fp32 weights (the master copy, or the fp32 model's weights)
  std::int64_t bytes_per_step = 0;  // logical bytes of the gradient reduction in the last step
};

std::vector<float> to_vector(Tensor weights) {
  return std::vector<float>(weights.as<float>(), weights.as<float>() + weights.numel());
}

// Trains `steps` steps of the tiny model on addition. With a communicator: this rank's rows and DDP buckets;
// without: all N·b rows in one process (the reference).
template <class Training>
TrainingRun train(Communicator* communicator, const stage06::DdpSettings& settings, int steps = kSteps) {
  const int world_size = world().world_size();
  const int rows = communicator ? kRowsPerRank : kRowsPerRank * world_size;
  const DataSlice slice{communicator ? communicator->rank() : 0, communicator ? world_size : 1, rows, 10};
  const auto data = make_data_source("addition", slice, 5);
  const GPTConfig config = named_config("tiny", data->vocab_size());
  Training training(config, AdamWConfig{}, rows, 10);
  training.model.initialize(11);
  std::unique_ptr<stage06::GradientBuckets> buckets;
  if (communicator) {
    buckets = std::make_unique<stage06::GradientBuckets>(training.model, *communicator, settings);
    training.model.set_hooks(buckets.get());
  }
  if constexpr (std::is_same_v<Training, stage05::Bf16Training>) training.master.copy_from(training.model);
  TrainingRun run;
  for (int step = 0; step < steps; ++step) {
    if (communicator) communicator->stats().reset();  // buckets start during backward: count from here
    double loss = training.model.forward(data->train_batch(step));
    training.model.zero_gradients();
    training.model.backward();
    if (communicator) {
      buckets->wait_all();
      run.bytes_per_step = communicator->stats().total_logical_bytes();
      loss = stage06::mean_over_ranks(*communicator, loss);
    }
    if constexpr (std::is_same_v<Training, stage05::Bf16Training>) {
      training.master.step(training.optimizer, training.model, kLearningRate);
    } else {
      training.optimizer.step(training.model.parameters(), training.model.gradients(), kLearningRate);
    }
    run.losses.push_back(loss);
  }
  if constexpr (std::is_same_v<Training, stage05::Bf16Training>) {
    run.master = to_vector(training.master.weights());
  } else {
    run.master = to_vector(training.model.parameters());
  }
  return run;
}

double max_relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / std::abs(b[i]));
  return worst;
}

TEST(Stage06Ddp, Fp32ReplicasMatchOneProcessWithTheWholeBatch) {
  // Same data, same weights; the only difference is where the sums over rows happen: inside one GEMM, or in N
  // GEMMs whose results are then added by the all-reduce. fp32 reassociation error is ~1e-7 relative per step;
  // Adam amplifies it a little over 10 steps, so 1e-5 relative on the losses. Not bit-identical even at N = 2:
  // the GEMM's own order of summation over rows differs from (rows of rank 0) + (rows of rank 1).
  const TrainingRun replicated = train<stage01::Fp32Training>(&world(), stage06::DdpSettings{});
  const TrainingRun reference = train<stage01::Fp32Training>(nullptr, stage06::DdpSettings{});
  EXPECT_LT(max_relative_difference(replicated.losses, reference.losses), 1e-5);
}

TEST(Stage06Ddp, Bf16ReplicasMatchStage05WithTheWholeBatchWithinBf16Tolerance) {
  // In bf16 each rank's partial gradient is rounded to 8 significant bits before the reduction (2^-8 relative),
  // and the mean is rounded again: the loss curves agree to about 1% over 10 steps.
  const TrainingRun replicated = train<stage05::Bf16Training>(&world(), stage06::DdpSettings{});
  const TrainingRun reference = train<stage05::Bf16Training>(nullptr, stage06::DdpSettings{});
  EXPECT_LT(max_relative_difference(replicated.losses, reference.losses), 2e-2);
}

TEST(Stage06Ddp, BucketSizeAndDelaysDoNotChangeTheResult) {
  stage06::DdpSettings per_unit, whole_model, delayed;
  per_unit.bucket_bytes = 1;                    // one bucket per unit
  whole_model.bucket_bytes = std::int64_t{1} << 40;  // one bucket
  delayed.bucket_bytes = 1;
  delayed.debug_delay_ms = 2;
  const TrainingRun a = train<stage05::Bf16Training>(&world(), per_unit, 3);
  const TrainingRun b = train<stage05::Bf16Training>(&world(), whole_model, 3);
  const TrainingRun c = train<stage05::Bf16Training>(&world(), delayed, 3);
  EXPECT_EQ(a.master, c.master) << "an injected delay changed the result";
  if (world().world_size() == 2) {
    // Two ranks: every element is a + b whatever the message size, so the bits agree.
    EXPECT_EQ(a.master, b.master);
  } else {
    // More ranks: MPI picks its algorithm by message size, and with it the order of the additions; the fp32
    // sums may differ in the last bit, which can flip a bf16 rounding. 1e-6 relative on the master weights.
    for (std::size_t i = 0; i < a.master.size(); ++i) {
      ASSERT_NEAR(a.master[i], b.master[i], 1e-6 * (1 + std::abs(b.master[i]))) << i;
    }
  }
}

TEST(Stage06Ddp, ReplicasStayIdentical) {
  const TrainingRun run = train<stage05::Bf16Training>(&world(), stage06::DdpSettings{}, 3);
  std::vector<float> root = run.master;
  world().broadcast(Tensor(root.data(), DType::F32, {static_cast<std::int64_t>(root.size())}), 0);
  EXPECT_EQ(run.master, root) << "rank " << world().rank() << " drifted from rank 0";
}

TEST(Stage06Ddp, EachStepReducesExactlyTheGradientsOnce) {
  const GPTConfig config = named_config("tiny", 16);
  const std::int64_t padded = ParameterLayout(config).padded_size();
  stage06::DdpSettings bf16;
  bf16.reduce_dtype = DType::BF16;
  EXPECT_EQ(train<stage05::Bf16Training>(&world(), stage06::DdpSettings{}, 1).bytes_per_step, padded * 4);
  EXPECT_EQ(train<stage05::Bf16Training>(&world(), bf16, 1).bytes_per_step, padded * 2);
}

TEST(Stage06Ddp, MemoryIsStage05PlusTheBucketBuffers) {
  const GPTConfig config = named_config("small", 16);
  const MemoryAccountant before = memory_accountant();
  auto added = [&](MemoryCategory category) {
    return memory_accountant().usage(Device::CPU, category).current - before.usage(Device::CPU, category).current;
  };
  stage05::Bf16Training training(config, AdamWConfig{}, kRowsPerRank, 10);
  const std::int64_t parameters = training.model.layout().padded_size();
  {
    stage06::GradientBuckets fp32_buckets(training.model, world(), stage06::DdpSettings{});
    EXPECT_EQ(added(MemoryCategory::Parameters), 2 * parameters);
    EXPECT_EQ(added(MemoryCategory::Gradients), 2 * parameters);
    EXPECT_EQ(added(MemoryCategory::MasterWeights), 4 * parameters);
    EXPECT_EQ(added(MemoryCategory::OptimizerState), 8 * parameters);
    EXPECT_EQ(added(MemoryCategory::CommBuffers), 4 * parameters) << "fp32 buckets hold every gradient once";
  }
  stage06::DdpSettings in_place;
  in_place.reduce_dtype = DType::BF16;
  stage06::GradientBuckets bf16_buckets(training.model, world(), in_place);
  EXPECT_EQ(added(MemoryCategory::CommBuffers), 0) << "bf16 reduction works in place";
}

}  // namespace
}  // namespace ladder
