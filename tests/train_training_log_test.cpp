// TrainingLog: console lines on schedule with hand-computed rates and ETAs, and JSONL lines that parse.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/train/training_log.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

StepMetrics step_metrics(std::int64_t step, double seconds, std::int64_t tokens = 1000) {
  StepMetrics metrics;
  metrics.step = step;
  metrics.loss = 2.0 / static_cast<double>(step);
  metrics.learning_rate = 3e-3;
  metrics.gradient_norm = 0.5123;
  metrics.tokens = tokens;
  metrics.step_seconds = seconds;
  return metrics;
}

TEST(TrainingLog, PrintsTheFirstEveryNthAndTheLastStep) {
  TrainingLog log("01_fp32_baseline", 10, 4, "");
  ::testing::internal::CaptureStdout();
  for (int step = 1; step <= 10; ++step) log.log_step(step_metrics(step, 1.0));
  const std::vector<std::string> lines = lines_of(::testing::internal::GetCapturedStdout());
  ASSERT_EQ(lines.size(), 4u);
  // The step number is right-aligned to the width of the total, so the columns line up.
  EXPECT_TRUE(lines[0].starts_with("01_fp32_baseline | step  1/10 | ")) << lines[0];
  EXPECT_TRUE(lines[1].starts_with("01_fp32_baseline | step  4/10 | ")) << lines[1];
  EXPECT_TRUE(lines[2].starts_with("01_fp32_baseline | step  8/10 | ")) << lines[2];
  EXPECT_TRUE(lines[3].starts_with("01_fp32_baseline | step 10/10 | ")) << lines[3];
}

TEST(TrainingLog, StepLineCarriesWindowRateElapsedAndEta) {
  TrainingLog log("stage", 10, 4, "");
  // Step times 1, 2, 3, 6 s: the mean (3 s) and the last step (6 s) give different ETAs, so the test
  // can tell which one is used.
  const double seconds[] = {1, 2, 3, 6};
  ::testing::internal::CaptureStdout();
  for (int step = 1; step <= 4; ++step) {
    StepMetrics metrics = step_metrics(step, seconds[step - 1]);
    if (step == 4) metrics.extras = {{"loss_scale", 65536}, {"skipped", 2}};
    log.log_step(metrics);
  }
  const std::vector<std::string> lines = lines_of(::testing::internal::GetCapturedStdout());
  ASSERT_EQ(lines.size(), 2u);
  // Step 1: 1000 tokens in 1 s; elapsed 1 s; ETA 9 steps x 1 s.
  EXPECT_EQ(lines[0], "stage | step  1/10 | loss 2.0000 | lr 3.00e-03 | norm 0.512 | 1.0k tok/s | 1.0s | ETA 9s");
  // Step 4: the window holds steps 2-4, 3000 tokens in 11 s = 272.7 tok/s; elapsed 12 s; ETA 6 x 12/4 = 18 s.
  EXPECT_EQ(lines[1], "stage | step  4/10 | loss 0.5000 | lr 3.00e-03 | norm 0.512 | 273 tok/s | 12.0s | ETA 18s"
                      " | loss_scale 65536 | skipped 2");
  EXPECT_DOUBLE_EQ(log.total_step_seconds(), 12.0);
  EXPECT_DOUBLE_EQ(log.mean_tokens_per_second(), 4000.0 / 12.0);
}

TEST(TrainingLog, LongDurationsReadInMinutesAndHours) {
  TrainingLog log("stage", 1000, 100, "");
  ::testing::internal::CaptureStdout();
  log.log_step(step_metrics(1, 0.5, 2'500'000));   // ETA 999 x 0.5 = 499.5 s -> 8m20s
  log.log_step(step_metrics(2, 99.5, 2'500'000));  // not printed; mean now 50 s
  log.log_step(step_metrics(3, 50.0, 2'500'000));  // not printed
  for (int step = 4; step <= 100; ++step) log.log_step(step_metrics(step, 50.0, 2'500'000));
  const std::vector<std::string> lines = lines_of(::testing::internal::GetCapturedStdout());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("| 5.0M tok/s | 0.5s | ETA 8m20s"), std::string::npos) << lines[0];
  // Step 100: elapsed 0.5 + 99.5 + 98 x 50 = 5000 s = 1h23m; ETA 900 x 50 s = 45000 s = 12h30m.
  // Window: 99 steps of 2.5M tokens over 4999.5 s = 49.5k tok/s.
  EXPECT_NE(lines[1].find("| 49.5k tok/s | 1h23m | ETA 12h30m"), std::string::npos) << lines[1];
}

TEST(TrainingLog, EvalLineWithAndWithoutAccuracy) {
  TrainingLog log("stage", 400, 20, "");
  ::testing::internal::CaptureStdout();
  log.log_eval({100, 0.81234, 0.41406});
  log.log_eval({400, 2.5, std::nullopt});
  log.info("free-form line");
  const std::vector<std::string> lines = lines_of(::testing::internal::GetCapturedStdout());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "stage | eval at step 100 | held-out loss 0.8123 | accuracy 41.4%");
  EXPECT_EQ(lines[1], "stage | eval at step 400 | held-out loss 2.5000");
  EXPECT_EQ(lines[2], "free-form line");
}

TEST(TrainingLog, SilentRanksPrintNothing) {
  TrainingLog log("stage", 3, 1, "", /*printing=*/false);
  ::testing::internal::CaptureStdout();
  for (int step = 1; step <= 3; ++step) log.log_step(step_metrics(step, 1.0));
  log.log_eval({3, 1.0, 0.5});
  log.info("hello");
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
}

TEST(TrainingLog, JsonLinesCarryEveryStepAndEvaluation) {
  testing_support::TempFolder folder("ladder-log-test");
  const std::string metrics_path = folder / "metrics.jsonl";
  {
    TrainingLog log("05_bf16", 3, 100, metrics_path, /*printing=*/false);
    for (int step = 1; step <= 3; ++step) {
      StepMetrics metrics = step_metrics(step, 0.25 * step, 512);
      metrics.extras = {{"loss_scale", 1024.0 * step}};
      log.log_step(metrics);
    }
    log.log_eval({3, 1.25, 0.75});
    log.log_eval({3, 1.5, std::nullopt});
    // Flushed per line: everything is on disk before the log is destroyed.
    std::ifstream early(metrics_path);
    std::string content((std::istreambuf_iterator<char>(early)), std::istreambuf_iterator<char>());
    EXPECT_EQ(lines_of(content).size(), 5u);
    EXPECT_TRUE(content.ends_with("\n"));
  }
  std::ifstream stream(metrics_path);
  std::vector<nlohmann::json> objects;
  for (std::string line; std::getline(stream, line);) objects.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(objects.size(), 5u);
  for (int step = 1; step <= 3; ++step) {
    const nlohmann::json& object = objects[step - 1];
    EXPECT_EQ(object["type"], "step");
    EXPECT_EQ(object["stage"], "05_bf16");
    EXPECT_EQ(object["step"], step);
    EXPECT_DOUBLE_EQ(object["loss"].get<double>(), 2.0 / step);
    EXPECT_DOUBLE_EQ(object["lr"].get<double>(), 3e-3);
    EXPECT_DOUBLE_EQ(object["grad_norm"].get<double>(), 0.5123);
    EXPECT_EQ(object["tokens"], 512);
    EXPECT_DOUBLE_EQ(object["step_seconds"].get<double>(), 0.25 * step);
    EXPECT_DOUBLE_EQ(object["tokens_per_second"].get<double>(), 512 / (0.25 * step));
    EXPECT_DOUBLE_EQ(object["loss_scale"].get<double>(), 1024.0 * step);
    EXPECT_EQ(object.size(), 10u);
  }
  EXPECT_EQ(objects[3], nlohmann::json::parse(R"({"type":"eval","stage":"05_bf16","step":3,"loss":1.25,"accuracy":0.75})"));
  EXPECT_EQ(objects[4], nlohmann::json::parse(R"({"type":"eval","stage":"05_bf16","step":3,"loss":1.5})"));
}

TEST(TrainingLog, ExtraThatShadowsAFieldIsRefused) {
  TrainingLog log("stage", 3, 1, "", false);
  StepMetrics metrics = step_metrics(1, 1.0);
  metrics.extras = {{"loss", 1.0}};
  EXPECT_THROW(log.log_step(metrics), LadderError);
}

TEST(TrainingLog, UncreatableMetricsFileNamesThePath) {
  const std::string path = "/nonexistent_ladder_folder/metrics.jsonl";
  try {
    TrainingLog log("stage", 3, 1, path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const LadderError& error) {
    EXPECT_NE(std::string(error.what()).find("cannot create the metrics file '" + path + "'"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(TrainingLog("stage", 3, 0, ""), LadderError);
  EXPECT_THROW(TrainingLog("stage", -1, 1, ""), LadderError);
}

}  // namespace
}  // namespace ladder
