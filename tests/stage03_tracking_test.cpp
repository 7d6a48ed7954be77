// Stage 03 against stages 01 and 02: from the same seed and batches, master weights keep the fp16 run on the fp32
// run's loss curve, where naive fp16 leaves it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iostream>
#include <limits>
#include <vector>

#include "01_fp32_baseline/fp32_training.hpp"
#include "02_fp16_naive/fp16_training.hpp"
#include "03_master_weights/master_weights.hpp"
#include "common/data/data_source.hpp"
#include "common/ops/ops.hpp"
#include "common/optim/learning_rate.hpp"

namespace ladder {
namespace {

constexpr std::uint64_t kSeed = 1337;
constexpr int kSteps = 20;
constexpr int kBatchSize = 8;
constexpr int kSequenceLength = 10;

// The recipe's loop, with the optimizer step (the only line that differs between the stages) passed in. The
// schedule warms up to 3e-3 (three times the default peak) over these 20 steps, to make the precisions part sooner.
std::vector<double> train(GPT& model, const DataSource& data, const std::function<void(double)>& optimizer_step) {
  const LearningRateSchedule schedule{3e-3, 0.1, kSteps, kSteps};
  std::vector<double> losses;
  for (int step = 0; step < kSteps; ++step) {
    losses.push_back(model.forward(data.train_batch(step)));
    model.zero_gradients();
    model.backward();
    optimizer_step(schedule.at(step));
  }
  return losses;
}

// Largest |a - b| over the curve; a NaN or inf on either side is infinitely far.
double curve_distance(const std::vector<double>& a, const std::vector<double>& b) {
  double distance = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double gap = std::abs(a[i] - b[i]);
    distance = std::isfinite(gap) ? std::max(distance, gap) : std::numeric_limits<double>::infinity();
    if (std::isinf(distance)) break;
  }
  return distance;
}

TEST(Stage03Tracking, MasterWeightsFollowTheFp32LossCurveAndNaiveFp16DoesNot) {
  // One BLAS thread: the suite runs tests side by side on two cores, and oversubscribed OpenBLAS threads are
  // several times slower than one.
  ops::set_cpu_threads(1);
  const auto data = make_data_source("addition", DataSlice{0, 1, kBatchSize, kSequenceLength}, kSeed);
  const GPTConfig config = named_config("small", data->vocab_size());

  stage01::Fp32Training fp32(config, AdamWConfig{}, kBatchSize, kSequenceLength);
  fp32.model.initialize(kSeed);
  const auto losses01 = train(fp32.model, *data, [&](double lr) {
    fp32.optimizer.step(fp32.model.parameters(), fp32.model.gradients(), lr);
  });

  stage02::Fp16Training naive(config, AdamWConfig{}, kBatchSize, kSequenceLength);
  naive.model.initialize(kSeed);
  const auto losses02 = train(naive.model, *data, [&](double lr) {
    naive.optimizer.step(naive.model.parameters(), naive.model.gradients(), lr);
  });

  stage03::MasterWeightsTraining mixed(config, AdamWConfig{}, kBatchSize, kSequenceLength);
  mixed.model.initialize(kSeed);
  mixed.master.copy_from(mixed.model);
  const auto losses03 = train(mixed.model, *data, [&](double lr) {
    mixed.master.step(mixed.optimizer, mixed.model, lr);
  });

  const double distance02 = curve_distance(losses02, losses01);
  const double distance03 = curve_distance(losses03, losses01);
  std::cout << "largest loss gap to stage 01 over " << kSteps << " steps: stage 02 " << distance02 << ", stage 03 "
            << distance03 << "\n";
  // 5e-3: fp16 storage perturbs the first loss by 1e-5 relative (stage 02's first-loss test); the largest gap comes
  // at step 2 (measured 1.2e-3), after the first update moved fp16-rounded weights, and it shrinks again as both
  // runs descend the same slope (under 4e-4 from step 3 on). Four times the measured gap leaves room for BLAS
  // builds that sum in another order.
  EXPECT_LT(distance03, 5e-3);
  // Naive fp16 leaves the curve: its Adam second moments underflow, steps blow up, and the loss turns NaN
  // (measured: from step 11; the gap is 0.75 nats already at step 4).
  EXPECT_GT(distance02, distance03);
  EXPECT_GT(distance02, 0.1);
  // Both fp16 stages start from the same fp16 weights, so the first loss agrees exactly; then stage 02 drifts off.
  EXPECT_EQ(losses02[0], losses03[0]);
  EXPECT_LT(losses03.back(), 0.6 * losses03.front());  // and stage 03 learns: 2.86 → 1.43 here
}

}  // namespace
}  // namespace ladder
