// parse_options: defaults, every flag, and a message naming the flag and value for each rejected input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/train/options.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

/// Parses a command line written as a list of words, the way main() receives it (argv[0] first).
TrainOptions parse(std::vector<std::string> words) {
  words.insert(words.begin(), "01_fp32_baseline");
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  return parse_options(static_cast<int>(words.size()), argv.data(), "01_fp32_baseline", "The fp32 baseline");
}

/// The LadderError message a command line produces; fails the test when it parses cleanly.
std::string error_of(const std::vector<std::string>& words) {
  try {
    parse(words);
  } catch (const LadderError& error) {
    return error.what();
  }
  ADD_FAILURE() << "expected a LadderError for the command line starting with " << words.front();
  return "";
}

TEST(TrainOptions, DefaultsAreTheDocumentedOnes) {
  const TrainOptions options = parse({});
  EXPECT_EQ(options.stage, "01_fp32_baseline");
  EXPECT_EQ(options.model_name, "small");
  EXPECT_EQ(options.layer_count, 0);
  EXPECT_EQ(options.head_count, 0);
  EXPECT_EQ(options.channels, 0);
  EXPECT_EQ(options.max_sequence_length, 0);
  EXPECT_EQ(options.data, "addition");
  EXPECT_EQ(options.batch_size, 64);
  EXPECT_EQ(options.sequence_length, 0);
  EXPECT_EQ(options.steps, 1000);
  EXPECT_DOUBLE_EQ(options.learning_rate, 1e-3);
  EXPECT_DOUBLE_EQ(options.min_learning_rate_ratio, 0.1);
  EXPECT_EQ(options.warmup_steps, 20);
  EXPECT_DOUBLE_EQ(options.weight_decay, 0.1);
  EXPECT_DOUBLE_EQ(options.beta1, 0.9);
  EXPECT_DOUBLE_EQ(options.beta2, 0.95);
  EXPECT_DOUBLE_EQ(options.epsilon, 1e-8);
  EXPECT_DOUBLE_EQ(options.gradient_clip, 1.0);
  EXPECT_EQ(options.seed, 1337u);
  EXPECT_EQ(options.log_every, 50);
  EXPECT_EQ(options.eval_every, 250);
  EXPECT_EQ(options.eval_batches, 8);
  EXPECT_EQ(options.eval_problems, 256);
  EXPECT_EQ(options.metrics_path, "");
  EXPECT_EQ(options.checkpoint_out, "");
  EXPECT_EQ(options.init_from, "");
  EXPECT_EQ(options.sample_count, 4);
  EXPECT_EQ(options.sample_tokens, 64);
  EXPECT_EQ(options.prompt, "");
  EXPECT_EQ(options.device, "auto");
  EXPECT_EQ(options.threads, 0);
}

TEST(TrainOptions, EveryFlagIsParsedIntoItsField) {
  testing_support::TempFolder folder;
  const std::string checkpoint = (folder / "start.safetensors");
  std::ofstream(checkpoint) << "exists";
  const TrainOptions options = parse({
      "--model", "tiny", "--layers", "3", "--heads", "5", "--channels", "40", "--context", "24",
      "--data", "text:corpus.txt", "--batch-size", "7", "--seq-len", "12",
      "--steps", "1234567890123", "--lr", "0.25", "--lr-min-ratio", "0.5", "--warmup", "9",
      "--weight-decay", "0.01", "--beta1", "0.8", "--beta2", "0.99", "--eps", "1e-6", "--grad-clip", "0",
      "--seed", "18446744073709551615",
      "--log-every", "11", "--eval-every", "0", "--eval-batches", "2", "--eval-problems", "0",
      "--metrics", (folder / "run.jsonl"),
      "--save", (folder / "end.safetensors"), "--load", checkpoint, "--samples", "0", "--sample-tokens", "5",
      "--prompt", "Once upon", "--device", "cpu", "--threads", "2"});
  EXPECT_EQ(options.model_name, "tiny");
  EXPECT_EQ(options.layer_count, 3);
  EXPECT_EQ(options.head_count, 5);
  EXPECT_EQ(options.channels, 40);
  EXPECT_EQ(options.max_sequence_length, 24);
  EXPECT_EQ(options.data, "text:corpus.txt");
  EXPECT_EQ(options.batch_size, 7);
  EXPECT_EQ(options.sequence_length, 12);
  EXPECT_EQ(options.steps, 1234567890123);
  EXPECT_DOUBLE_EQ(options.learning_rate, 0.25);
  EXPECT_DOUBLE_EQ(options.min_learning_rate_ratio, 0.5);
  EXPECT_EQ(options.warmup_steps, 9);
  EXPECT_DOUBLE_EQ(options.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(options.beta1, 0.8);
  EXPECT_DOUBLE_EQ(options.beta2, 0.99);
  EXPECT_DOUBLE_EQ(options.epsilon, 1e-6);
  EXPECT_DOUBLE_EQ(options.gradient_clip, 0.0);
  EXPECT_EQ(options.seed, 18446744073709551615ull);
  EXPECT_EQ(options.log_every, 11);
  EXPECT_EQ(options.eval_every, 0);
  EXPECT_EQ(options.eval_batches, 2);
  EXPECT_EQ(options.eval_problems, 0);
  EXPECT_EQ(options.metrics_path, (folder / "run.jsonl"));
  EXPECT_EQ(options.checkpoint_out, (folder / "end.safetensors"));
  EXPECT_EQ(options.init_from, checkpoint);
  EXPECT_EQ(options.sample_count, 0);
  EXPECT_EQ(options.sample_tokens, 5);
  EXPECT_EQ(options.prompt, "Once upon");
  EXPECT_EQ(options.device, "cpu");
  EXPECT_EQ(options.threads, 2);
}

TEST(TrainOptions, EqualsSignAndBareFileNamesWork) {
  const TrainOptions options = parse({"--steps=5", "--metrics=run.jsonl", "--save", "out.safetensors"});
  EXPECT_EQ(options.steps, 5);
  EXPECT_EQ(options.metrics_path, "run.jsonl");  // the current folder always exists
  EXPECT_EQ(options.checkpoint_out, "out.safetensors");
}

/// Each rejected value: the message must name the flag together with the value the user typed.
struct RejectedValue {
  std::string flag;
  std::string value;
  std::string expected_in_message;
};

TEST(TrainOptions, EachOutOfRangeValueNamesTheFlagAndValue) {
  const std::vector<RejectedValue> cases = {
      {"--layers", "-1", "--layers -1: expected an integer >= 0"},
      {"--heads", "-2", "--heads -2: expected"},
      {"--channels", "-8", "--channels -8: expected"},
      {"--context", "-1", "--context -1: expected"},
      {"--batch-size", "0", "--batch-size 0: expected an integer >= 1"},
      {"--seq-len", "-4", "--seq-len -4: expected"},
      {"--steps", "-1", "--steps -1: expected an integer >= 0"},
      {"--lr", "0", "--lr 0: expected a number > 0"},
      {"--lr", "-0.5", "--lr -0.5: expected a number > 0"},
      {"--lr", "inf", "--lr inf: expected a finite number"},
      {"--lr", "nan", "--lr nan: expected a finite number"},
      {"--lr-min-ratio", "1.5", "--lr-min-ratio 1.5: expected a number in [0, 1]"},
      {"--lr-min-ratio", "-0.1", "--lr-min-ratio -0.1: expected"},
      {"--warmup", "-1", "--warmup -1: expected an integer >= 0"},
      {"--weight-decay", "-0.1", "--weight-decay -0.1: expected a number >= 0"},
      {"--beta1", "1", "--beta1 1: expected a number in [0, 1)"},
      {"--beta1", "-0.1", "--beta1 -0.1: expected"},
      {"--beta2", "1.5", "--beta2 1.5: expected a number in [0, 1)"},
      {"--eps", "0", "--eps 0: expected a number > 0"},
      {"--grad-clip", "-1", "--grad-clip -1: expected a number >= 0"},
      {"--log-every", "0", "--log-every 0: expected an integer >= 1"},
      {"--eval-every", "-1", "--eval-every -1: expected an integer >= 0"},
      {"--eval-batches", "0", "--eval-batches 0: expected an integer >= 1"},
      {"--eval-problems", "-1", "--eval-problems -1: expected an integer >= 0"},
      {"--samples", "-1", "--samples -1: expected an integer >= 0"},
      {"--sample-tokens", "-1", "--sample-tokens -1: expected an integer >= 0"},
      {"--threads", "-1", "--threads -1: expected an integer >= 0"},
  };
  for (const RejectedValue& rejected : cases) {
    // "--flag=value" so that a negative value cannot be mistaken for a flag of its own.
    const std::string message = error_of({rejected.flag + "=" + rejected.value});
    EXPECT_NE(message.find(rejected.expected_in_message), std::string::npos)
        << rejected.flag << " " << rejected.value << " gave: " << message;
  }
}

TEST(TrainOptions, NegativeValueAfterASpaceIsReadAsAValue) {
  EXPECT_NE(error_of({"--steps", "-5"}).find("--steps -5: expected an integer >= 0"), std::string::npos);
}

TEST(TrainOptions, IntegersThatDoNotFitAreRejectedNotSaturated) {
  const std::string steps = error_of({"--steps", "99999999999999999999"});
  EXPECT_NE(steps.find("--steps"), std::string::npos) << steps;
  EXPECT_NE(steps.find("99999999999999999999: out of range"), std::string::npos) << steps;
  const std::string seed = error_of({"--seed", "-1"});
  EXPECT_NE(seed.find("--seed"), std::string::npos) << seed;
  EXPECT_NE(seed.find("-1: expected an integer >= 0"), std::string::npos) << seed;
  const std::string layers = error_of({"--layers", "3000000000"});
  EXPECT_NE(layers.find("--layers"), std::string::npos) << layers;
  EXPECT_NE(layers.find("3000000000"), std::string::npos) << layers;
}

TEST(TrainOptions, UnknownModelListsTheChoices) {
  const std::string message = error_of({"--model", "gpt5"});
  EXPECT_NE(message.find("--model"), std::string::npos) << message;
  EXPECT_NE(message.find("gpt5"), std::string::npos) << message;
  EXPECT_NE(message.find("tiny"), std::string::npos) << message;
  EXPECT_NE(message.find("gpt2-124m"), std::string::npos) << message;
}

TEST(TrainOptions, UnknownDeviceListsTheChoices) {
  EXPECT_EQ(error_of({"--device", "gpu"}), "--device gpu: expected auto, cpu, cuda or meta");
}

TEST(TrainOptions, DeviceTakesCudaAndTf32) {
  EXPECT_FALSE(parse({}).tf32);
  const TrainOptions options = parse({"--device", "cuda", "--tf32"});
  EXPECT_EQ(options.device, "cuda");
  EXPECT_TRUE(options.tf32);
}

TEST(TrainOptions, OutputFilesNeedAnExistingFolder) {
  testing_support::TempFolder folder;
  const std::string missing_folder = (folder / "no_such_folder");
  for (const std::string flag : {"--metrics", "--save"}) {
    const std::string path = missing_folder + "/out.file";
    const std::string message = error_of({flag, path});
    EXPECT_NE(message.find(flag + " " + path), std::string::npos) << message;
    EXPECT_NE(message.find("the folder '" + missing_folder + "' does not exist"), std::string::npos) << message;
  }
  const std::string folder_as_file = error_of({"--save", (folder / "")});
  EXPECT_NE(folder_as_file.find("is a folder"), std::string::npos) << folder_as_file;
}

TEST(TrainOptions, LoadNeedsAnExistingFile) {
  testing_support::TempFolder folder;
  const std::string path = (folder / "missing.safetensors");
  EXPECT_EQ(error_of({"--load", path}), "--load " + path + ": the file does not exist");
  const std::string folder_message = error_of({"--load", (folder / "")});
  EXPECT_NE(folder_message.find("is not a regular file"), std::string::npos) << folder_message;
}

TEST(TrainOptions, ParseErrorsPointToHelp) {
  const std::string suffix = " (run with --help for the list of flags)";
  const std::string unknown = error_of({"--frobnicate", "3"});
  EXPECT_NE(unknown.find("--frobnicate"), std::string::npos) << unknown;
  EXPECT_TRUE(unknown.ends_with(suffix)) << unknown;

  const std::string missing_value = error_of({"--steps"});
  EXPECT_NE(missing_value.find("--steps"), std::string::npos) << missing_value;
  EXPECT_TRUE(missing_value.ends_with(suffix)) << missing_value;

  const std::string not_a_number = error_of({"--lr", "fast"});
  EXPECT_NE(not_a_number.find("--lr"), std::string::npos) << not_a_number;
  EXPECT_NE(not_a_number.find("fast"), std::string::npos) << not_a_number;
  EXPECT_TRUE(not_a_number.ends_with(suffix)) << not_a_number;

  const std::string fraction = error_of({"--steps", "2.5"});
  EXPECT_NE(fraction.find("2.5"), std::string::npos) << fraction;
}

TEST(TrainOptions, HelpPrintsUsageWithDefaultsAndExitsWithZero) {
  ::testing::internal::CaptureStdout();
  int exit_code = -1;
  try {
    parse({"--help"});
  } catch (const EarlyExit& early_exit) {
    exit_code = early_exit.code;
  }
  const std::string help = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(exit_code, 0);
  EXPECT_NE(help.find("01_fp32_baseline"), std::string::npos) << help;
  EXPECT_NE(help.find("The fp32 baseline"), std::string::npos) << help;
  for (const char* flag_with_default : {"--steps INT=1000", "--lr FLOAT=0.001", "--batch-size INT=64",
                                        "--seed UINT=1337", "--device TEXT=auto", "--model TEXT"}) {
    EXPECT_NE(help.find(flag_with_default), std::string::npos) << flag_with_default << " missing from:\n" << help;
  }
}

TEST(TrainOptions, AStageMayChangeDefaultsAndFlagsStillOverrideThem) {
  // Stage 10 adapts to subtraction by default; --help must show the stage's default, and a flag still wins.
  TrainOptions defaults;
  defaults.data = "subtraction";
  defaults.steps = 300;
  auto parse_with_defaults = [&](std::vector<std::string> words) {
    words.insert(words.begin(), "10_lora");
    std::vector<char*> argv;
    for (std::string& word : words) argv.push_back(word.data());
    return parse_options(static_cast<int>(words.size()), argv.data(), "10_lora", "LoRA", {}, defaults);
  };
  const TrainOptions options = parse_with_defaults({});
  EXPECT_EQ(options.data, "subtraction");
  EXPECT_EQ(options.steps, 300);
  EXPECT_EQ(options.stage, "10_lora");
  EXPECT_EQ(options.learning_rate, TrainOptions{}.learning_rate) << "fields the stage left alone keep theirs";
  EXPECT_EQ(parse_with_defaults({"--data", "addition"}).data, "addition");
  ::testing::internal::CaptureStdout();
  EXPECT_THROW(parse_with_defaults({"--help"}), EarlyExit);
  const std::string help = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(help.find("--steps INT=300"), std::string::npos) << help;
}

}  // namespace
}  // namespace ladder
