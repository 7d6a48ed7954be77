// Stage 10 used as a user would: its flags, its refusals, its files, and the two equivalences with stage 05 (a base
// it trains itself is the one 05 would save; its merged model, evaluated by 05, gives the numbers 10 reported).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/train/safetensors.hpp"
#include "tests/resume_checks.hpp"
#include "tests/run_command.hpp"

namespace ladder {
namespace {

using testing_support::CommandResult;
using testing_support::expect_refused;
using testing_support::jsonl_records;
using testing_support::read_file;
using testing_support::run_command;
using testing_support::TempFolder;

const std::string kStage = LADDER_STAGE10_BINARY;
const std::string kStage05 = LADDER_STAGE05_BINARY;
// The tiny model, 8 rows a batch, one small evaluation, no samples: each run well under a second.
const std::string kTiny = " --model tiny --batch-size 8 --eval-problems 8 --eval-batches 2 --samples 0";

// The last evaluation record of a metrics file.
nlohmann::json final_eval(const std::string& jsonl_path) {
  nlohmann::json last;
  for (const nlohmann::json& record : jsonl_records(read_file(jsonl_path))) {
    if (record.at("type") == "eval") last = record;
  }
  return last;
}

// A base for the tiny model: stage 05 on addition, a few steps.
std::string make_base(const TempFolder& folder, const std::string& name = "base.safetensors",
                      const std::string& flags = "") {
  const std::string path = folder / name;
  const CommandResult made = run_command(kStage05 + kTiny + " --steps 6 --save " + path + flags);
  EXPECT_EQ(made.exit_code, 0) << made.output;
  return path;
}

TEST(Stage10Cli, HelpListsTheLoraFlagsAndTheSubtractionDefault) {
  const CommandResult result = run_command(kStage + " --help");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  for (const char* expected : {"--lora-targets TEXT=q,v", "--lora-rank INT=8", "--lora-alpha", "--lora-dropout",
                               "--base TEXT", "--save-merged", "--data TEXT=subtraction", "LoRA"}) {
    EXPECT_NE(result.output.find(expected), std::string::npos) << expected << " missing from\n" << result.output;
  }
}

TEST(Stage10Cli, BadSettingsAreRefusedByName) {
  TempFolder folder("ladder-stage10-bad");
  const std::string base = make_base(folder);
  const std::string run = kStage + kTiny + " --steps 1 --base " + base;
  expect_refused(run_command(run + " --lora-rank 0"), "--lora-rank 0: expected an integer >= 1");
  expect_refused(run_command(run + " --lora-rank 17"),
                 "--lora-rank 17 is larger than target 'q' allows: its weight is 16x16, so r <= 16");
  expect_refused(run_command(run + " --lora-targets q,x"), "unknown target 'x'");
  expect_refused(run_command(run + " --lora-targets q,q"), "target 'q' is named twice");
  expect_refused(run_command(run + " --lora-dropout 1"), "--lora-dropout 1: expected a number in [0, 1)");
  expect_refused(run_command(kStage + kTiny + " --base " + (folder / "missing.safetensors")), "missing.safetensors");
  // A base of another shape: 32 channels instead of the tiny model's 16.
  const std::string wide = make_base(folder, "wide.safetensors", " --channels 32");
  expect_refused(run_command(kStage + kTiny + " --steps 1 --base " + wide), "has channels = 32 but the model has 16");
}

TEST(Stage10Cli, AdapterFilesRoundTripAndAnotherRankIsRefused) {
  TempFolder folder("ladder-stage10-files");
  const std::string base = make_base(folder);
  const std::string adapters = folder / "lora.safetensors";
  const CommandResult trained = run_command(kStage + kTiny + " --steps 5 --base " + base + " --save " + adapters +
                                            " --metrics " + (folder / "trained.jsonl"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const SafetensorsFile file = SafetensorsFile::read(adapters);
  EXPECT_EQ(file.names().size(), 2u * 2 * 2) << "A and B of q and v in the tiny model's 2 layers";
  EXPECT_EQ(nlohmann::json::parse(read_file(folder / "lora.adapter_config.json")).at("r"), 8);

  // Loaded back and merged without a step, they give the very model the first run ended with.
  const CommandResult reloaded = run_command(kStage + kTiny + " --steps 0 --base " + base + " --load " + adapters +
                                             " --metrics " + (folder / "reloaded.jsonl"));
  ASSERT_EQ(reloaded.exit_code, 0) << reloaded.output;
  EXPECT_EQ(final_eval(folder / "reloaded.jsonl").at("loss"), final_eval(folder / "trained.jsonl").at("loss"));
  expect_refused(run_command(kStage + kTiny + " --steps 0 --base " + base + " --load " + adapters + " --lora-rank 4"),
                 "has r = 8 but this run has 4");
}

TEST(Stage10Cli, TheMergedModelEvaluatedByStage05GivesWhatStage10Reported) {
  TempFolder folder("ladder-stage10-merged");
  const std::string base = make_base(folder);
  const std::string merged = folder / "merged.safetensors";
  const CommandResult adapted = run_command(kStage + kTiny + " --steps 12 --lr 1e-2 --base " + base +
                                            " --save-merged " + merged + " --metrics " + (folder / "lora.jsonl"));
  ASSERT_EQ(adapted.exit_code, 0) << adapted.output;
  // q and v of 2 layers at r = 8: 2·2·8·(16 + 16) = 1,024.
  EXPECT_NE(adapted.output.find("trainable: 1,024 parameters"), std::string::npos) << adapted.output;
  // Stage 05 evaluates the merged checkpoint without training (--steps 0) on the task 10 adapted to.
  const CommandResult evaluated = run_command(kStage05 + kTiny + " --data subtraction --steps 0 --load " + merged +
                                              " --metrics " + (folder / "stage05.jsonl"));
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  const nlohmann::json ours = final_eval(folder / "lora.jsonl"), theirs = final_eval(folder / "stage05.jsonl");
  // The same bf16 weights and the same held-out batches through the same code: the same bits.
  EXPECT_EQ(ours.at("loss").get<double>(), theirs.at("loss").get<double>());
  EXPECT_EQ(ours.at("accuracy").get<double>(), theirs.at("accuracy").get<double>());
  // And the adapters did something: the merged model is not the base.
  ASSERT_EQ(run_command(kStage05 + kTiny + " --data subtraction --steps 0 --load " + base + " --metrics " +
                        (folder / "base.jsonl")).exit_code, 0);
  EXPECT_LT(ours.at("loss").get<double>(), final_eval(folder / "base.jsonl").at("loss").get<double>());
}

TEST(Stage10Cli, WithoutABaseItTrainsStage05sAndSaysSo) {
  TempFolder folder("ladder-stage10-own-base");
  const std::string own = folder / "own.safetensors";
  const CommandResult result =
      run_command(kStage + kTiny + " --steps 0 --base-steps 6 --save-merged " + own);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("no --base given: training one first with stage 05's recipe (6 steps of addition)"),
            std::string::npos) << result.output;
  // No step taken, B is zero: the merged model is the base, which must be what `05_bf16 --steps 6` saves.
  const SafetensorsFile ours = SafetensorsFile::read(own), theirs = SafetensorsFile::read(make_base(folder));
  ASSERT_EQ(ours.names(), theirs.names());
  for (const std::string& name : ours.names()) EXPECT_EQ(ours.get(name).bytes, theirs.get(name).bytes) << name;
}

TEST(Stage10Cli, StoppedAndResumedRunHasTheBitsOfAStraightRun) {
  TempFolder folder("ladder-stage10-resume");
  const std::string base = make_base(folder);
  // 20 steps, 4 evaluations and the base's evaluation before step 1, which the resumed half takes from the checkpoint.
  const auto split = resume_checks::expect_resumed_run_equals_straight_run(kStage, " --base " + base, 20 + 4 + 1);
  std::vector<std::string> names;
  for (const auto& tensor : split.manifest.at("tensors")) names.push_back(tensor.at("name"));
  EXPECT_EQ(names, (std::vector<std::string>{"base_weights", "adapters", "adapter_master_weights", "adamw.first_moment",
                                             "adamw.second_moment"}));
  EXPECT_EQ(split.manifest.at("scalars").at("adamw.step_count"), 10);
  EXPECT_EQ(split.resume_output.find("base loaded from"), std::string::npos) << "the base comes from the checkpoint";
  // The closing report's "before" is the base's evaluation (the straight run's first record), carried over in the
  // checkpoint: not an evaluation of the restored adapters.
  const nlohmann::json& base_eval = split.straight_records.at(0);
  ASSERT_EQ(base_eval.at("type"), "eval");
  ASSERT_EQ(base_eval.at("step"), 0);
  char before[64];
  std::snprintf(before, sizeof before, "; loss %.4f -> ", base_eval.at("loss").get<double>());
  EXPECT_NE(split.resume_output.find(before), std::string::npos) << before << "\n" << split.resume_output;
}

TEST(Stage10Cli, AMetaPlanAccountsWhatARealRunHolds) {
  TempFolder folder("ladder-stage10-meta");
  const std::string base = make_base(folder);
  const std::string flags = kTiny + " --steps 1 --eval-every 0 --lora-targets q,v,fc --lora-rank 4";
  const CommandResult real = run_command(kStage + flags + " --base " + base + " --metrics " + (folder / "real.jsonl"));
  ASSERT_EQ(real.exit_code, 0) << real.output;
  const CommandResult planned = run_command(kStage + flags + " --device meta --metrics " + (folder / "meta.jsonl"));
  ASSERT_EQ(planned.exit_code, 0) << planned.output;
  EXPECT_NE(planned.output.find("meta device: the base is neither read nor trained"), std::string::npos)
      << planned.output;
  const auto memory_of = [](const std::string& path) {
    for (const nlohmann::json& record : jsonl_records(read_file(path))) {
      if (record.at("type") == "memory") return record;
    }
    return nlohmann::json();
  };
  const nlohmann::json real_memory = memory_of(folder / "real.jsonl");
  const nlohmann::json meta_memory = memory_of(folder / "meta.jsonl");
  ASSERT_FALSE(real_memory.is_null());
  ASSERT_FALSE(meta_memory.is_null());
  // Workspace differs (a plan never evaluates, and evaluation's scratch is not the step's); the state does not.
  for (const char* category : {"parameters", "gradients", "master weights", "optimizer state", "activations"}) {
    EXPECT_EQ(meta_memory.at("categories").at(category).at("peak"), real_memory.at("categories").at(category).at("peak"))
        << category;
  }
}

TEST(Stage10Cli, OutputsThatAreNotRegularFilesAreRefusedAndLeftAlone) {
  TempFolder folder("ladder-stage10-targets");
  const std::string fifo = folder / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const std::string run = kStage + kTiny + " --steps 1 --base-steps 2";
  testing_support::expect_refused(run_command(run + " --save-merged " + fifo), "--save-merged " + fifo + ": is a FIFO");
  testing_support::expect_refused(run_command(run + " --save " + fifo), "--save " + fifo + ": is a FIFO");
  // The adapters' JSON config goes beside them, renamed into place too.
  const std::string config_fifo = folder / "adapters.adapter_config.json";
  ASSERT_EQ(::mkfifo(config_fifo.c_str(), 0644), 0);
  testing_support::expect_refused(run_command(run + " --save " + (folder / "adapters.safetensors")),
                                  "--save (its adapter config) " + config_fifo + ": is a FIFO");
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));
  EXPECT_TRUE(std::filesystem::is_fifo(config_fifo));
  EXPECT_FALSE(std::filesystem::exists(folder / "adapters.safetensors")) << "refused before anything is written";
}

}  // namespace
}  // namespace ladder
