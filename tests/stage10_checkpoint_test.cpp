// Stage 10's adapter files: written with PEFT's names and adapter_config.json, read back bit for bit, and every
// mismatch refused with a message that names it (another rank or targets, another base, a misshapen tensor).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "10_lora/lora_checkpoint.hpp"
#include "common/train/model_checkpoint.hpp"
#include "common/train/safetensors.hpp"
#include "tests/stage10_test_support.hpp"
#include "tests/stage_test_support.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

using testing_support::as_floats;
using testing_support::error_message_of;
using testing_support::lora_on_tiny_base;
using testing_support::lora_settings;
using testing_support::randomize_adapters;
using testing_support::TempFolder;

TEST(Stage10Checkpoint, AdaptersRoundTripWithPeftNamesAndConfig) {
  TempFolder folder("ladder-stage10-checkpoint");
  const std::string path = folder / "adapters.safetensors";
  auto saved = lora_on_tiny_base(lora_settings({"q", "fc"}, 3, 6), DType::BF16, 1);
  randomize_adapters(*saved, 4);
  stage10::save_adapters(path, saved->adapters, saved->master.weights(), saved->model.config());

  const SafetensorsFile file = SafetensorsFile::read(path);
  const StoredTensor& a = file.get("base_model.model.blocks.1.mlp.fc.lora_A.weight");
  EXPECT_EQ(a.dtype, DType::F32) << "the fp32 master is what is saved";
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{3, 16}));
  EXPECT_EQ(file.get("base_model.model.blocks.0.attn.q.lora_B.weight").shape, (std::vector<std::int64_t>{16, 3}));
  EXPECT_EQ(file.names().size(), 2u * 2 * 2) << "A and B of q and fc in 2 layers, nothing else";

  EXPECT_EQ(stage10::adapter_config_path(path), folder / "adapters.adapter_config.json");
  const nlohmann::json config = nlohmann::json::parse(testing_support::read_file(stage10::adapter_config_path(path)));
  EXPECT_EQ(config.at("peft_type"), "LORA");
  EXPECT_EQ(config.at("r"), 3);
  EXPECT_EQ(config.at("lora_alpha"), 6.0);
  EXPECT_EQ(config.at("target_modules"), (std::vector<std::string>{"q", "fc"}));
  EXPECT_EQ(config.at("lora_dropout"), 0.0);

  auto loaded = lora_on_tiny_base(lora_settings({"q", "fc"}, 3, 6), DType::BF16, 1);
  loaded->load(path);
  EXPECT_EQ(as_floats(loaded->master.weights()), as_floats(saved->master.weights()));
  EXPECT_EQ(as_floats(loaded->adapters.weights()), as_floats(saved->adapters.weights()));
  EXPECT_EQ(folder.entries(), (std::vector<std::string>{"adapters.adapter_config.json", "adapters.safetensors"}))
      << "no temporary file is left behind";
}

TEST(Stage10Checkpoint, MismatchesAreRefusedByName) {
  TempFolder folder("ladder-stage10-mismatch");
  const std::string path = folder / "adapters.safetensors";
  auto saved = lora_on_tiny_base(lora_settings({"q", "v"}, 2), DType::BF16, 1);
  stage10::save_adapters(path, saved->adapters, saved->master.weights(), saved->model.config());

  auto other_rank = lora_on_tiny_base(lora_settings({"q", "v"}, 4), DType::BF16, 1);
  EXPECT_NE(error_message_of([&] { other_rank->load(path); }).find("has r = 2 but this run has 4"), std::string::npos);
  auto other_targets = lora_on_tiny_base(lora_settings({"q", "k"}, 2), DType::BF16, 1);
  EXPECT_NE(error_message_of([&] { other_targets->load(path); }).find("target_modules = q,v but this run has q,k"),
            std::string::npos);
  GPTConfig wider = testing_support::lora_test_config();
  wider.channels = 32;
  stage10::LoraTraining other_base(wider, AdamWConfig{}, lora_settings({"q", "v"}, 2), 1, 2, 5);
  EXPECT_NE(error_message_of([&] { other_base.load(path); }).find("channels = 16 but this run has 32"),
            std::string::npos);

  // A file that claims this run's settings but holds a tensor of another shape (written by hand here).
  const SafetensorsFile good = SafetensorsFile::read(path);
  std::vector<TensorToWrite> tensors;
  std::vector<float> zeros(64, 0.0f);
  for (const std::string& name : good.names()) {
    std::vector<std::int64_t> shape = good.get(name).shape;
    if (name == "base_model.model.blocks.1.attn.v.lora_A.weight") shape = {2, 8};
    tensors.push_back({name, DType::F32, shape, zeros.data()});
  }
  const std::string misshapen = folder / "misshapen.safetensors";
  write_safetensors(misshapen, tensors, good.metadata());
  const std::string message = error_message_of([&] { saved->load(misshapen); });
  EXPECT_NE(message.find("tensor 'base_model.model.blocks.1.attn.v.lora_A.weight' is F32 [2, 8]; expected F32 [2, 16]"),
            std::string::npos) << message;

  // A whole-model checkpoint is not an adapter file.
  const std::string model_file = folder / "model.safetensors";
  save_model_checkpoint(model_file, saved->model);
  EXPECT_NE(error_message_of([&] { saved->load(model_file); }).find("is not a ladder LoRA adapter file"),
            std::string::npos);
}

}  // namespace
}  // namespace ladder
