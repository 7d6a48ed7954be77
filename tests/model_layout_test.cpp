// The parameter layout, the initialisation and the unit hooks, checked against formulas and recomputation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common/model/gpt.hpp"

namespace ladder {
namespace {

std::int64_t formula_parameter_count(const GPTConfig& c) {
  const std::int64_t C = c.channels, Vp = c.padded_vocab_size;
  const std::int64_t block = 2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + 4 * C * C + 4 * C + 4 * C * C + C;
  return Vp * C + std::int64_t{c.max_sequence_length} * C + c.layer_count * block + 2 * C + Vp * C;
}

TEST(ParameterLayout, CountsMatchTheFormulaForEveryNamedConfig) {
  for (const std::string& name : named_config_names()) {
    for (int vocab : {13, 256, 50257}) {
      const GPTConfig config = named_config(name, vocab);
      const ParameterLayout layout(config);
      EXPECT_EQ(layout.parameter_count(), formula_parameter_count(config)) << name << " V=" << vocab;
    }
  }
  // GPT-2 124M with an untied head: 124,475,904 + 50304·768 (the head) = 163,109,376 parameters.
  EXPECT_EQ(ParameterLayout(named_config("gpt2-124m", 50257)).parameter_count(), 163'109'376);
}

TEST(ParameterLayout, UnitsTileTheBufferAndSplitIntoEqualAlignedShards) {
  for (int shards : {1, 2, 3, 4, 8}) {
    const ParameterLayout layout(named_config("tiny", 13), shards);
    std::int64_t cursor = 0;
    ASSERT_EQ(static_cast<int>(layout.units().size()), 2 + 2);
    for (const ParameterUnit& unit : layout.units()) {
      EXPECT_EQ(unit.offset, cursor) << unit.name;
      EXPECT_EQ(unit.size % (ParameterLayout::kTensorAlignment * shards), 0) << unit.name << " with " << shards;
      cursor += unit.size;
      std::int64_t previous_end = unit.offset;
      for (int t = unit.first_tensor; t < unit.first_tensor + unit.tensor_count; ++t) {
        const ParameterTensor& tensor = layout.tensors()[t];
        EXPECT_GE(tensor.offset, previous_end) << tensor.name << " overlaps its predecessor";
        EXPECT_EQ(tensor.offset % ParameterLayout::kTensorAlignment, 0) << tensor.name;
        previous_end = tensor.offset + tensor.numel;
      }
      EXPECT_LE(previous_end, unit.offset + unit.size) << unit.name;
    }
    EXPECT_EQ(cursor, layout.padded_size());
  }
}

TEST(ParameterLayout, TinyPaddingIsExactlyAsDocumented) {
  // tiny, V=13 -> Vp=16, C=16, T=16. Every tensor is a multiple of 16 elements, so tensors pack without
  // gaps and each unit is already a multiple of 16: no padding at all at one shard.
  const ParameterLayout one(named_config("tiny", 13), 1);
  EXPECT_EQ(one.padded_size(), one.parameter_count());
  // With 3 shards units round up to multiples of 48: embeddings 512 -> 528, blocks 3280 -> 3312, head 288 -> 288.
  const ParameterLayout three(named_config("tiny", 13), 3);
  EXPECT_EQ(three.padded_size(), 528 + 2 * 3312 + 288);
}

TEST(ParameterLayout, OnlyMatricesDecay) {
  const ParameterLayout layout(named_config("tiny", 13));
  for (const ParameterTensor& tensor : layout.tensors()) EXPECT_EQ(tensor.decays, tensor.shape.size() == 2) << tensor.name;
  EXPECT_THROW(layout.tensor("no.such.weight"), LadderError);
}

TEST(GPTInitialize, FollowsTheGpt2SchemeAndIsDeterministic) {
  const GPTConfig config = named_config("small", 16);
  GPT a(config, DType::F32, 1, 8), b(config, DType::F32, 1, 8), c(config, DType::F32, 1, 8);
  a.initialize(42);
  b.initialize(42);
  c.initialize(43);
  EXPECT_EQ(0, std::memcmp(a.parameters().data(), b.parameters().data(), a.parameters().bytes()));
  EXPECT_NE(0, std::memcmp(a.parameters().data(), c.parameters().data(), a.parameters().bytes()));

  auto std_of = [](Tensor t) {
    double sum = 0, squares = 0;
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      sum += t.as<float>()[i];
      squares += double(t.as<float>()[i]) * t.as<float>()[i];
    }
    const double mean = sum / t.numel();
    return std::sqrt(squares / t.numel() - mean * mean);
  };
  EXPECT_NEAR(std_of(a.parameter("blocks.0.mlp.fc.weight")), 0.02, 0.0005);
  EXPECT_NEAR(std_of(a.parameter("blocks.0.attn.proj.weight")), 0.02 / std::sqrt(2.0 * config.layer_count), 0.0005);
  for (float v : std::vector<float>(a.parameter("blocks.1.ln2.weight").as<float>(),
                                    a.parameter("blocks.1.ln2.weight").as<float>() + config.channels)) {
    EXPECT_EQ(v, 1.0f);
  }
  for (std::int64_t i = 0; i < config.channels * 4; ++i) EXPECT_EQ(a.parameter("blocks.2.mlp.fc.bias").as<float>()[i], 0.0f);
}

TEST(GPTInitialize, PaddedVocabularyRowsAreZero) {
  const GPTConfig config = named_config("tiny", 13);  // padded to 16
  GPT model(config, DType::F32, 1, 4);
  model.initialize(1);
  for (const char* name : {"wte", "lm_head.weight"}) {
    const float* table = model.parameter(name).as<float>();
    for (std::int64_t i = std::int64_t{config.vocab_size} * config.channels; i < std::int64_t{16} * config.channels; ++i) {
      EXPECT_EQ(table[i], 0.0f) << name << " element " << i;
    }
  }
}

// Records the hook calls, and checks at after_backward(u) that unit u's gradients are already final.
class RecordingHooks : public UnitHooks {
 public:
  explicit RecordingHooks(GPT& model) : model_(model) {}
  void before_forward(int unit) override { calls.push_back("F" + std::to_string(unit)); }
  void after_forward(int unit) override { calls.push_back("f" + std::to_string(unit)); }
  void before_backward(int unit) override {
    calls.push_back("B" + std::to_string(unit));
    // Nothing may have written this unit's gradients before its turn.
    EXPECT_EQ(unit_gradient_sum(unit), 0.0) << "unit " << unit << " gradients written before before_backward";
  }
  void after_backward(int unit) override {
    calls.push_back("b" + std::to_string(unit));
    snapshots[unit] = unit_gradient(unit);
  }
  double unit_gradient_sum(int unit) const {
    const ParameterUnit& u = model_.layout().units()[unit];
    const float* g = model_.gradients().as<float>() + u.offset;
    double sum = 0;
    for (std::int64_t i = 0; i < u.size; ++i) sum += std::abs(g[i]);
    return sum;
  }
  std::vector<float> unit_gradient(int unit) const {
    const ParameterUnit& u = model_.layout().units()[unit];
    const float* g = model_.gradients().as<float>() + u.offset;
    return std::vector<float>(g, g + u.size);
  }
  std::vector<std::string> calls;
  std::map<int, std::vector<float>> snapshots;

 private:
  GPT& model_;
};

TEST(GPTHooks, AnnounceUnitsInOrderAndGradientsAreCompleteAtAfterBackward) {
  GPT model(named_config("tiny", 13), DType::F32, 2, 6);
  model.initialize(5);
  RecordingHooks hooks(model);
  model.set_hooks(&hooks);
  Batch batch;
  batch.batch_size = 2;
  batch.sequence_length = 6;
  for (int i = 0; i < 12; ++i) {
    batch.inputs.push_back(i % 13);
    batch.targets.push_back((i + 1) % 13);
  }
  model.forward(batch);
  model.zero_gradients();
  model.backward();
  const std::vector<std::string> expected = {"F0", "f0", "F1", "f1", "F2", "f2", "F3", "f3",
                                             "B3", "b3", "B2", "b2", "B1", "b1", "B0", "b0"};
  EXPECT_EQ(hooks.calls, expected);
  for (int unit = 0; unit < model.unit_count(); ++unit) {
    EXPECT_EQ(hooks.snapshots[unit], hooks.unit_gradient(unit)) << "unit " << unit << " changed after after_backward";
    EXPECT_GT(hooks.unit_gradient_sum(unit), 0.0) << "unit " << unit << " got no gradient";
  }
}

TEST(GPTErrors, BadShapesAndTokensAreNamed) {
  GPT model(named_config("tiny", 13), DType::F32, 2, 6);
  Batch batch;
  batch.batch_size = 3;  // more rows than the activations hold
  batch.sequence_length = 6;
  batch.inputs.assign(18, 1);
  batch.targets.assign(18, 1);
  EXPECT_THROW(model.forward(batch), LadderError);
  batch.batch_size = 2;
  batch.inputs.assign(12, 13);  // token 13 is outside V = 13
  batch.targets.assign(12, 1);
  try {
    model.forward(batch);
    FAIL() << "expected an error for token 13";
  } catch (const LadderError& error) {
    EXPECT_NE(std::string(error.what()).find("13"), std::string::npos) << error.what();
  }
  EXPECT_THROW(GPT(named_config("tiny", 13), DType::F32, 1, 17), LadderError);  // longer than the context of 16
  GPTConfig odd = named_config("tiny", 13);
  odd.head_count = 3;
  EXPECT_THROW(odd.validate(), LadderError);
}

}  // namespace
}  // namespace ladder
