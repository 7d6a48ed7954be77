// A GPT whose weights and gradients a stage lends it unit by unit (ZeRO-2, FSDP) computes exactly what a GPT
// with its own flat buffers computes, allocates neither buffer, and says which unit is missing when one is.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/data/data_source.hpp"
#include "common/model/gpt.hpp"
#include "common/ops/ops.hpp"
#include "tests/stage_test_support.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

constexpr GPTStorage kLentByTheStage{StorageOwner::Stage, StorageOwner::Stage};

// Storage a test lends to a model: one buffer per unit, holding a copy of the owned model's weights.
struct LentUnits {
  std::vector<Buffer> weights;
  std::vector<Buffer> gradients;
  LentUnits(const GPT& source, GPT& borrower) {
    for (int unit = 0; unit < source.unit_count(); ++unit) {
      const Tensor values = source.unit_parameters(unit);
      weights.emplace_back(static_cast<std::size_t>(values.bytes()), MemoryCategory::Parameters);
      gradients.emplace_back(static_cast<std::size_t>(values.bytes()), MemoryCategory::Gradients);
      ops::copy(view_of(weights.back(), source.dtype()), values);
      borrower.attach_unit_parameters(unit, view_of(weights.back(), source.dtype()));
      borrower.attach_unit_gradients(unit, view_of(gradients.back(), source.dtype()));
    }
  }
};

std::vector<unsigned char> bytes_of(Tensor values) {
  std::vector<unsigned char> bytes(static_cast<std::size_t>(values.bytes()));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

TEST(UnitStorage, LentStorageGivesTheSameLossAndGradientsBitForBit) {
  const auto data = make_data_source("addition", DataSlice{0, 1, 4, 10}, 3);
  const GPTConfig config = named_config("tiny", data->vocab_size());
  for (DType dtype : {DType::F32, DType::BF16}) {
    GPT owner(config, dtype, 4, 10, 2);
    owner.initialize(5);
    GPT borrower(config, dtype, 4, 10, 2, Device::CPU, kLentByTheStage);
    LentUnits lent(owner, borrower);
    const Batch batch = data->train_batch(0);
    EXPECT_EQ(owner.forward(batch), borrower.forward(batch));
    owner.zero_gradients();
    owner.backward();
    borrower.backward();
    for (int unit = 0; unit < owner.unit_count(); ++unit) {
      EXPECT_EQ(bytes_of(owner.unit_gradients(unit)), bytes_of(borrower.unit_gradients(unit))) << "unit " << unit;
    }
  }
}

TEST(UnitStorage, AStageHeldModelAllocatesNoWeightsOrGradients) {
  const testing_support::MemorySnapshot before;
  GPT borrower(named_config("tiny", 16), DType::BF16, 4, 10, 1, Device::CPU, kLentByTheStage);
  EXPECT_EQ(before.added(MemoryCategory::Parameters), 0);
  EXPECT_EQ(before.added(MemoryCategory::Gradients), 0);
  EXPECT_GT(before.added(MemoryCategory::Activations), 0);
}

TEST(UnitStorage, MissingOrWrongStorageIsRefusedNamingTheUnit) {
  GPT borrower(named_config("tiny", 16), DType::BF16, 4, 10, 1, Device::CPU, kLentByTheStage);
  using testing_support::error_message_of;
  EXPECT_NE(error_message_of([&] { borrower.parameters(); }).find("no flat parameter buffer"), std::string::npos);
  EXPECT_NE(error_message_of([&] { borrower.gradients(); }).find("no flat gradient buffer"), std::string::npos);
  const std::string missing = error_message_of([&] { borrower.parameter("blocks.1.mlp.fc.weight"); });
  EXPECT_NE(missing.find("unit 2 (blocks.1)"), std::string::npos) << missing;
  const auto data = make_data_source("addition", DataSlice{0, 1, 4, 10}, 3);
  EXPECT_NE(error_message_of([&] { borrower.forward(data->train_batch(0)); }).find("unit 0 (embeddings)"),
            std::string::npos);
  std::vector<float> wrong_type(static_cast<std::size_t>(borrower.layout().units()[0].size));
  const std::string dtype = error_message_of([&] {
    borrower.attach_unit_parameters(0, Tensor(wrong_type.data(), DType::F32, {borrower.layout().units()[0].size}));
  });
  EXPECT_NE(dtype.find("must be BF16"), std::string::npos) << dtype;
  std::vector<std::uint16_t> short_storage(16);
  const std::string size = error_message_of(
      [&] { borrower.attach_unit_gradients(1, Tensor(short_storage.data(), DType::BF16, {16})); });
  EXPECT_NE(size.find("must hold"), std::string::npos) << size;
  GPT owner(named_config("tiny", 16), DType::BF16, 4, 10);
  EXPECT_THROW(owner.attach_unit_parameters(0, owner.unit_parameters(0)), LadderError);
}

TEST(UnitStorage, InitialisingOneUnitAtATimeGivesTheWholeModelsValues) {
  const GPTConfig config = named_config("tiny", 13);
  GPT whole(config, DType::BF16, 2, 8, 3);
  whole.initialize(21);
  GPT piecewise(config, DType::BF16, 2, 8, 3, Device::CPU, kLentByTheStage);
  std::vector<Buffer> units;
  for (int unit = piecewise.unit_count() - 1; unit >= 0; --unit) {  // in reverse: order must not matter
    units.emplace_back(static_cast<std::size_t>(whole.unit_parameters(unit).bytes()), MemoryCategory::Parameters);
    piecewise.attach_unit_parameters(unit, view_of(units.back(), DType::BF16));
    piecewise.initialize_unit(21, unit);
    EXPECT_EQ(bytes_of(piecewise.unit_parameters(unit)), bytes_of(whole.unit_parameters(unit))) << "unit " << unit;
  }
}

}  // namespace
}  // namespace ladder
