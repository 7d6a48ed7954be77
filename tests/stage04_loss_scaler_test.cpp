// Stage 04's DynamicLossScaler as a state machine: the scale, the growth tracker and the skipped count after
// clean and overflowed steps, checked against the schedule torch.amp.GradScaler follows (worked out by hand
// below), plus the overflow check and the flags that configure it.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "04_loss_scaling/loss_scaler.hpp"
#include "common/error.hpp"

namespace ladder {
namespace {

using stage04::DynamicLossScaler;
using stage04::LossScalerConfig;

constexpr bool kClean = false;
constexpr bool kOverflow = true;

LossScalerConfig with_interval(std::int64_t interval, double initial_scale = 1024.0) {
  LossScalerConfig config;
  config.initial_scale = initial_scale;
  config.growth_interval = interval;
  return config;
}

TEST(Stage04LossScaler, DefaultsAreGradScalersPlusAFloorOfOne) {
  const DynamicLossScaler scaler;
  EXPECT_EQ(scaler.scale(), 65536.0);  // 2^16
  EXPECT_EQ(scaler.config().growth_factor, 2.0);
  EXPECT_EQ(scaler.config().backoff_factor, 0.5);
  EXPECT_EQ(scaler.config().growth_interval, 2000);
  EXPECT_EQ(scaler.config().min_scale, 1.0);
  EXPECT_FALSE(scaler.config().fixed);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  EXPECT_EQ(scaler.skipped_steps(), 0);
}

TEST(Stage04LossScaler, AnOverflowHalvesTheScaleCountsTheSkipAndResetsTheTracker) {
  DynamicLossScaler scaler(with_interval(10));
  scaler.update(kClean);
  scaler.update(kClean);
  EXPECT_EQ(scaler.growth_tracker(), 2);
  scaler.update(kOverflow);
  EXPECT_EQ(scaler.scale(), 512.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  EXPECT_EQ(scaler.skipped_steps(), 1);
  scaler.update(kOverflow);  // overflows in a row keep halving
  EXPECT_EQ(scaler.scale(), 256.0);
  EXPECT_EQ(scaler.skipped_steps(), 2);
  scaler.update(kClean);  // a clean step counts towards growth but is not a skip
  EXPECT_EQ(scaler.growth_tracker(), 1);
  EXPECT_EQ(scaler.skipped_steps(), 2);
}

TEST(Stage04LossScaler, GrowsAfterExactlyGrowthIntervalCleanSteps) {
  DynamicLossScaler scaler(with_interval(3));
  scaler.update(kClean);
  scaler.update(kClean);
  EXPECT_EQ(scaler.scale(), 1024.0) << "2 of 3 clean steps: not yet";
  EXPECT_EQ(scaler.growth_tracker(), 2);
  scaler.update(kClean);
  EXPECT_EQ(scaler.scale(), 2048.0) << "the 3rd clean step doubles the scale";
  EXPECT_EQ(scaler.growth_tracker(), 0) << "and starts counting again";
  for (int step = 0; step < 3; ++step) scaler.update(kClean);
  EXPECT_EQ(scaler.scale(), 4096.0);
  EXPECT_EQ(scaler.skipped_steps(), 0);
}

TEST(Stage04LossScaler, TheDefaultDoublesAfter2000CleanStepsAndNotBefore) {
  DynamicLossScaler scaler;
  for (int step = 0; step < 1999; ++step) scaler.update(kClean);
  EXPECT_EQ(scaler.scale(), 65536.0);
  EXPECT_EQ(scaler.growth_tracker(), 1999);
  scaler.update(kClean);
  EXPECT_EQ(scaler.scale(), 131072.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
}

TEST(Stage04LossScaler, AnOverflowRestartsTheCountTowardsGrowth) {
  DynamicLossScaler scaler(with_interval(3));
  scaler.update(kClean);
  scaler.update(kClean);
  scaler.update(kOverflow);  // 1024 -> 512; the two clean steps no longer count
  scaler.update(kClean);
  scaler.update(kClean);
  EXPECT_EQ(scaler.scale(), 512.0) << "only 2 clean steps since the overflow";
  EXPECT_EQ(scaler.growth_tracker(), 2);
  scaler.update(kClean);
  EXPECT_EQ(scaler.scale(), 1024.0);
}

TEST(Stage04LossScaler, GrowthAndBackoffFactorsAreConfigurable) {
  LossScalerConfig config = with_interval(2, 100.0);
  config.growth_factor = 4.0;
  config.backoff_factor = 0.25;
  DynamicLossScaler scaler(config);
  scaler.update(kOverflow);
  EXPECT_EQ(scaler.scale(), 25.0);
  scaler.update(kClean);
  scaler.update(kClean);
  EXPECT_EQ(scaler.scale(), 100.0);
}

TEST(Stage04LossScaler, TheFloorHoldsUnderRepeatedOverflow) {
  LossScalerConfig config = with_interval(2000, 16.0);
  config.min_scale = 4.0;
  DynamicLossScaler scaler(config);
  const std::vector<double> expected = {8, 4, 4, 4, 4};  // 16·0.5 = 8, 8·0.5 = 4, then held at the floor
  for (double scale : expected) {
    scaler.update(kOverflow);
    EXPECT_EQ(scaler.scale(), scale);
  }
  EXPECT_EQ(scaler.skipped_steps(), 5) << "steps are still skipped at the floor";
}

TEST(Stage04LossScaler, ABackoffBelowTheFloorStopsExactlyAtTheFloor) {
  LossScalerConfig config = with_interval(2000, 10.0);
  config.min_scale = 3.0;
  DynamicLossScaler scaler(config);
  scaler.update(kOverflow);
  EXPECT_EQ(scaler.scale(), 5.0);
  scaler.update(kOverflow);
  EXPECT_EQ(scaler.scale(), 3.0) << "2.5 would be below the floor of 3";
}

TEST(Stage04LossScaler, DefaultFloorOfOneIsReachedFromTwoToTheSixteenAfterSixteenOverflows) {
  DynamicLossScaler scaler;
  for (int step = 0; step < 16; ++step) scaler.update(kOverflow);
  EXPECT_EQ(scaler.scale(), 1.0);
  scaler.update(kOverflow);
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_EQ(scaler.skipped_steps(), 17);
}

TEST(Stage04LossScaler, GrowthThatWouldOverflowADoubleIsNotApplied) {
  // GradScaler's rule: the grown scale is kept only if it is finite.
  DynamicLossScaler scaler(with_interval(1, std::numeric_limits<double>::max()));
  scaler.update(kClean);
  EXPECT_EQ(scaler.scale(), std::numeric_limits<double>::max());
  EXPECT_EQ(scaler.growth_tracker(), 0);
}

TEST(Stage04LossScaler, AFixedScaleNeverMovesButStillCountsSkippedSteps) {
  LossScalerConfig config = with_interval(1, 128.0);
  config.fixed = true;
  DynamicLossScaler scaler(config);
  scaler.update(kClean);
  scaler.update(kClean);
  EXPECT_EQ(scaler.scale(), 128.0) << "interval 1 would have doubled a dynamic scale twice";
  scaler.update(kOverflow);
  EXPECT_EQ(scaler.scale(), 128.0);
  EXPECT_EQ(scaler.skipped_steps(), 1);
  EXPECT_EQ(scaler.growth_tracker(), 0);
}

// --- the overflow check ---

TEST(Stage04LossScaler, InfOrNanAnywhereIsFoundInEveryFloatDtype) {
  const float infinity = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    Buffer buffer(8 * dtype_size(dtype), MemoryCategory::Workspace);
    Tensor values = view_of(buffer, dtype);
    auto fill = [&](float special, int where) {
      for (int i = 0; i < 8; ++i) {
        const float value = i == where ? special : 0.25f * static_cast<float>(i - 4);
        if (dtype == DType::F32) values.as<float>()[i] = value;
        if (dtype == DType::F16) values.as<Half>()[i] = Half(value);
        if (dtype == DType::BF16) values.as<BFloat16>()[i] = BFloat16(value);
      }
    };
    fill(1.0f, -1);
    EXPECT_FALSE(stage04::has_inf_or_nan(values)) << dtype_name(dtype);
    for (float special : {infinity, -infinity, nan}) {
      for (int where : {0, 7}) {
        fill(special, where);
        EXPECT_TRUE(stage04::has_inf_or_nan(values)) << dtype_name(dtype) << " value " << special << " at " << where;
      }
    }
  }
}

TEST(Stage04LossScaler, TheLargestAndSmallestFiniteHalvesAreNotOverflow) {
  Buffer buffer(4 * dtype_size(DType::F16), MemoryCategory::Workspace);
  Tensor values = view_of(buffer, DType::F16);
  values.as<Half>()[0] = Half(65504.0f);    // fp16's largest finite value
  values.as<Half>()[1] = Half(-65504.0f);
  values.as<Half>()[2] = Half(5.96e-8f);    // its smallest subnormal
  values.as<Half>()[3] = Half(0.0f);
  ASSERT_TRUE(std::isfinite(static_cast<float>(values.as<Half>()[0])));
  EXPECT_FALSE(stage04::has_inf_or_nan(values));
}

// --- settings and flags ---

void expect_refused(const LossScalerConfig& config, const std::string& flag) {
  try {
    DynamicLossScaler scaler(config);
    ADD_FAILURE() << "a scaler was built with a bad " << flag;
  } catch (const LadderError& error) {
    EXPECT_NE(std::string(error.what()).find(flag), std::string::npos) << error.what();
  }
}

TEST(Stage04LossScaler, BadSettingsAreRefusedNamingTheirFlag) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double infinity = std::numeric_limits<double>::infinity();
  auto changed = [](auto edit) {
    LossScalerConfig config;
    edit(config);
    return config;
  };
  for (double bad : {1.5, 1.0, 0.0, -0.5, nan}) {
    expect_refused(changed([&](LossScalerConfig& c) { c.backoff_factor = bad; }), "--scale-backoff");
  }
  for (double bad : {1.0, 0.5, infinity, nan}) {
    expect_refused(changed([&](LossScalerConfig& c) { c.growth_factor = bad; }), "--scale-growth");
  }
  for (std::int64_t bad : {0, -3}) {
    expect_refused(changed([&](LossScalerConfig& c) { c.growth_interval = bad; }), "--scale-interval");
  }
  for (double bad : {0.0, -1.0, infinity, nan}) {
    expect_refused(changed([&](LossScalerConfig& c) { c.min_scale = bad; }), "--min-loss-scale");
  }
  for (double bad : {0.0, -2.0, infinity, nan, 0.5 /* below the default floor of 1 */}) {
    expect_refused(changed([&](LossScalerConfig& c) { c.initial_scale = bad; }), "--loss-scale");
  }
  // Below the floor is fine once the floor is lowered.
  EXPECT_NO_THROW(DynamicLossScaler(changed([](LossScalerConfig& c) {
    c.initial_scale = 0.5;
    c.min_scale = 0.25;
  })));
}

LossScalerConfig parsed(std::vector<std::string> arguments) {
  LossScalerConfig config;
  CLI::App app;
  stage04::add_loss_scaler_flags(app, config);
  arguments.insert(arguments.begin(), "stage");
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return config;
}

TEST(Stage04LossScaler, FlagsSetEverySetting) {
  const LossScalerConfig config = parsed({"--loss-scale", "256", "--scale-growth", "3", "--scale-backoff", "0.25",
                                          "--scale-interval", "7", "--min-loss-scale", "2", "--fixed-loss-scale"});
  EXPECT_EQ(config.initial_scale, 256.0);
  EXPECT_EQ(config.growth_factor, 3.0);
  EXPECT_EQ(config.backoff_factor, 0.25);
  EXPECT_EQ(config.growth_interval, 7);
  EXPECT_EQ(config.min_scale, 2.0);
  EXPECT_TRUE(config.fixed);
  EXPECT_FALSE(parsed({}).fixed);
}

TEST(Stage04LossScaler, FlagsAreValidatedWhenParsingEnds) {
  try {
    parsed({"--scale-backoff", "1.5"});
    ADD_FAILURE() << "--scale-backoff 1.5 was accepted";
  } catch (const LadderError& error) {
    EXPECT_NE(std::string(error.what()).find("--scale-backoff 1.5"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace ladder
