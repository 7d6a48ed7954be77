// A training state written as a checkpoint and read back in one process: every tensor and number with its bits, the
// manifest's record of the run, the folder's bookkeeping (newest complete, --keep), and what a resume refuses.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/comm/local_communicator.hpp"
#include "common/error.hpp"
#include "common/model/gpt_config.hpp"
#include "common/train/checkpoint_folder.hpp"
#include "common/train/checkpoint_io.hpp"
#include "common/train/run_identity.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

using testing_support::TempFolder;

/// A state like a stage's: bf16 weights, fp32 master weights, AdamW's moments and step count, and two numbers.
struct ExampleState {
  ExampleState()
      : layout(named_config("tiny", 16)),
        weights(layout.padded_size() * 2, MemoryCategory::Parameters),
        master(layout.padded_size() * 4, MemoryCategory::MasterWeights),
        optimizer(layout, AdamWConfig{}),
        state(layout) {
    state.add("weights", view_of(weights, DType::BF16));
    state.add_shard("master_weights", view_of(master, DType::F32));
    state.add_optimizer("adamw", optimizer);
    state.add_number("scale", [this] { return scale; }, [this](double value) { scale = value; });
    state.add_integer("count", [this] { return count; }, [this](std::int64_t value) { count = value; });
  }
  void fill(unsigned char seed) {
    for (Buffer* buffer : {&weights, &master}) {
      auto* bytes = static_cast<unsigned char*>(buffer->data());
      for (std::size_t i = 0; i < buffer->bytes(); ++i) bytes[i] = static_cast<unsigned char>(seed + 7 * i);
    }
    float* moment = optimizer.first_moment().as<float>();
    for (std::int64_t i = 0; i < optimizer.size(); ++i) moment[i] = std::sin(static_cast<float>(i + seed));
    optimizer.set_step_count(seed);
    scale = 0.1 * seed;
    count = (std::int64_t{1} << 53) + seed;  // not exact as a double: integers must travel as integers
  }
  ParameterLayout layout;
  Buffer weights;
  Buffer master;
  AdamW optimizer;
  TrainingState state;
  double scale = 0;
  std::int64_t count = 0;
};

std::string bytes_of(const Buffer& buffer) { return std::string(static_cast<const char*>(buffer.data()), buffer.bytes()); }

CheckpointRequest request_for(const std::string& folder, std::int64_t step) {
  CheckpointRequest request;
  request.folder = folder;
  request.step = step;
  request.keep = 2;
  request.identity.stage = "test";
  request.device = "cpu";
  return request;
}

TEST(CheckpointState, EveryTensorAndNumberComesBackWithItsBits) {
  TempFolder folder;
  LocalCommunicator local;
  ExampleState written;
  written.fill(3);
  const CheckpointWrite result = write_checkpoint(request_for(folder / "run", 5), written.state, local);
  EXPECT_EQ(result.files, 1);
  EXPECT_EQ(result.path, folder / "run/step-00000005");

  ExampleState restored;
  restored.fill(9);
  const CheckpointManifest manifest = read_manifest(result.path + "/manifest.json");
  EXPECT_EQ(manifest.step, 5);
  EXPECT_EQ(manifest.layout.size(), written.layout.units().size());
  restore_checkpoint(result.path, manifest, restored.state, local);
  EXPECT_EQ(bytes_of(restored.weights), bytes_of(written.weights));
  EXPECT_EQ(bytes_of(restored.master), bytes_of(written.master));
  EXPECT_EQ(std::memcmp(restored.optimizer.first_moment().data(), written.optimizer.first_moment().data(),
                        static_cast<std::size_t>(written.optimizer.first_moment().bytes())), 0);
  EXPECT_EQ(restored.optimizer.step_count(), 3);
  EXPECT_EQ(restored.scale, 0.1 * 3);
  EXPECT_EQ(restored.count, (std::int64_t{1} << 53) + 3);
}

TEST(CheckpointState, AStateOfOtherTensorsIsRefusedByName) {
  TempFolder folder;
  LocalCommunicator local;
  ExampleState written;
  const CheckpointWrite result = write_checkpoint(request_for(folder / "run", 1), written.state, local);
  const CheckpointManifest manifest = read_manifest(result.path + "/manifest.json");

  TrainingState other(written.layout);
  Buffer weights(written.layout.padded_size() * 4, MemoryCategory::Parameters);
  other.add("weights", view_of(weights, DType::F32));
  const std::string message =
      testing_support::error_message_of([&] { restore_checkpoint(result.path, manifest, other, local); });
  EXPECT_NE(message.find("tensor 'weights' is BF16 there and F32 in this run"), std::string::npos) << message;
}

TEST(CheckpointFolder, TheNewestCompleteCheckpointIsFoundAndOnlyKeepOfThemStay) {
  TempFolder folder;
  const std::string run = folder / "run";
  for (std::int64_t step : {2, 4, 6, 8}) {
    const std::string path = prepare_checkpoint_folder(run, step);
    if (step != 8) testing_support::write_file(path + "/manifest.json", "{}");  // 8: a write that did not finish
  }
  std::filesystem::create_directory(run + "/notes");  // not a checkpoint: left alone
  ASSERT_TRUE(newest_complete_checkpoint(run).has_value());
  EXPECT_EQ(newest_complete_checkpoint(run)->step, 6);
  EXPECT_EQ(list_checkpoints(run).size(), 4u);
  prune_checkpoints(run, 2);
  std::vector<std::int64_t> left;
  for (const CheckpointFolder& checkpoint : list_checkpoints(run)) left.push_back(checkpoint.step);
  EXPECT_EQ(left, (std::vector<std::int64_t>{4, 6}));
  EXPECT_TRUE(std::filesystem::is_directory(run + "/notes"));
  EXPECT_THROW(prepare_checkpoint_folder(run, 6), LadderError) << "a complete checkpoint is never overwritten";
  EXPECT_FALSE(newest_complete_checkpoint(folder / "nothing").has_value());
}

TEST(RunIdentity, ADifferentRunIsRefusedWithEveryDifferenceAndTheSameOneSpelledOtherwiseIsNot) {
  RunIdentity checkpoint{"05_bf16", 2, {{"channels", "16"}}, {{"--lr", "0.001"}, {"--seed", "1337"}}};
  RunIdentity now = checkpoint;
  now.flags["--lr"] = "1e-3";
  EXPECT_NO_THROW(require_same_run(checkpoint, now, "ck"));
  now.flags["--lr"] = "0.002";
  now.flags["--seed"] = "7";
  now.model["channels"] = "32";
  const std::string message = testing_support::error_message_of([&] { require_same_run(checkpoint, now, "ck"); });
  for (const char* difference : {"--lr: 0.001 in the checkpoint, 0.002 now", "--seed: 1337 in the checkpoint, 7 now",
                                 "model channels: 16 in the checkpoint, 32 now"}) {
    EXPECT_NE(message.find(difference), std::string::npos) << message;
  }
  now = checkpoint;
  now.world_size = 4;
  EXPECT_NE(testing_support::error_message_of([&] { require_same_run(checkpoint, now, "ck"); })
                .find("written by 2 ranks, and this run has 4"),
            std::string::npos);
  now = checkpoint;
  now.stage = "04_loss_scaling";
  EXPECT_NE(testing_support::error_message_of([&] { require_same_run(checkpoint, now, "ck"); })
                .find("written by stage 05_bf16, not 04_loss_scaling"),
            std::string::npos);
}

}  // namespace
}  // namespace ladder
